package qw

// UserCmd is one client movement command (usercmd_t): the client runs it
// for Msec milliseconds, and so does the server, which moves the player
// once per command it receives.
type UserCmd struct {
	Msec    uint8
	Angles  [3]float32 // view pitch, yaw, roll in degrees (sent as Angle16)
	Forward int16      // forwardmove, sidemove, upmove in units/s
	Side    int16
	Up      int16
	Buttons uint8 // BUTTON_*
	Impulse uint8
}

// Quantize returns cmd with its angles rounded to what the wire carries,
// the value the other side will see.
func (cmd UserCmd) Quantize() UserCmd {
	for i, a := range cmd.Angles {
		cmd.Angles[i] = float32(int16(Angle16Bits(a))) * (360.0 / 65536)
	}
	return cmd
}

// deltaBits returns the CM_* bits for sending to against from: a field is
// sent when its wire value changes (angles are compared after quantizing,
// so a change too small to show on the wire costs nothing).
func deltaBits(from, to *UserCmd) uint8 {
	var bits uint8
	angleBits := [3]uint8{CM_ANGLE1, CM_ANGLE2, CM_ANGLE3}
	for i := range 3 {
		if Angle16Bits(to.Angles[i]) != Angle16Bits(from.Angles[i]) {
			bits |= angleBits[i]
		}
	}
	if to.Forward != from.Forward {
		bits |= CM_FORWARD
	}
	if to.Side != from.Side {
		bits |= CM_SIDE
	}
	if to.Up != from.Up {
		bits |= CM_UP
	}
	if to.Buttons != from.Buttons {
		bits |= CM_BUTTONS
	}
	if to.Impulse != from.Impulse {
		bits |= CM_IMPULSE
	}
	return bits
}

// DeltaUserCmd writes to as a delta against from (MSG_WriteDeltaUsercmd):
// a CM_* bits byte, the changed angles (Angle16, in the order angle 1, 2,
// 3), forward, side and up (shorts), buttons and impulse (bytes), and msec,
// which is always sent.
func (w *Writer) DeltaUserCmd(from, to *UserCmd) {
	bits := deltaBits(from, to)
	w.Byte(bits)
	if bits&CM_ANGLE1 != 0 {
		w.Angle16(to.Angles[0])
	}
	if bits&CM_ANGLE2 != 0 {
		w.Angle16(to.Angles[1])
	}
	if bits&CM_ANGLE3 != 0 {
		w.Angle16(to.Angles[2])
	}
	if bits&CM_FORWARD != 0 {
		w.Short(to.Forward)
	}
	if bits&CM_SIDE != 0 {
		w.Short(to.Side)
	}
	if bits&CM_UP != 0 {
		w.Short(to.Up)
	}
	if bits&CM_BUTTONS != 0 {
		w.Byte(to.Buttons)
	}
	if bits&CM_IMPULSE != 0 {
		w.Byte(to.Impulse)
	}
	w.Byte(to.Msec)
}

// DeltaUserCmd reads a command sent as a delta against from. A field whose
// bit is clear keeps from's value. Any bits pattern is accepted, including
// bits for unchanged fields, as id's reader does; re-encoding such a
// command gives the canonical (minimal) form.
func (r *Reader) DeltaUserCmd(from *UserCmd) UserCmd {
	cmd := *from
	bits := r.Byte()
	if bits&CM_ANGLE1 != 0 {
		cmd.Angles[0] = r.Angle16()
	}
	if bits&CM_ANGLE2 != 0 {
		cmd.Angles[1] = r.Angle16()
	}
	if bits&CM_ANGLE3 != 0 {
		cmd.Angles[2] = r.Angle16()
	}
	if bits&CM_FORWARD != 0 {
		cmd.Forward = r.Short()
	}
	if bits&CM_SIDE != 0 {
		cmd.Side = r.Short()
	}
	if bits&CM_UP != 0 {
		cmd.Up = r.Short()
	}
	if bits&CM_BUTTONS != 0 {
		cmd.Buttons = r.Byte()
	}
	if bits&CM_IMPULSE != 0 {
		cmd.Impulse = r.Byte()
	}
	cmd.Msec = r.Byte()
	return cmd
}
