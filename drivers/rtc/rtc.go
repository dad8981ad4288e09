// Package rtc reads the wall-clock time from the PC CMOS real-time clock
// (Motorola MC146818A compatible), which molt uses once at boot to anchor
// CLOCK_REALTIME.
//
// Read runs before the Go runtime starts, so it is //go:nosplit and
// allocation-free.
package rtc

import "github.com/molt-os/molt/drivers/internal/reg"

const (
	INDEX = 0x70
	DATA  = 0x71

	SECONDS  = 0x00
	MINUTES  = 0x02
	HOURS    = 0x04
	DAY      = 0x07
	MONTH    = 0x08
	YEAR     = 0x09
	STATUS_A = 0x0a
	STATUS_B = 0x0b
	CENTURY  = 0x32 // ACPI FADT default; QEMU implements it

	STATUS_A_UIP    = 1 << 7 // update in progress
	STATUS_B_24H    = 1 << 1
	STATUS_B_BINARY = 1 << 2
)

//go:nosplit
func read(r uint8) uint8 {
	reg.Out8(INDEX, r|0x80) // bit 7 keeps NMIs disabled while we look
	return reg.In8(DATA)
}

//go:nosplit
func bcd(v uint8) uint8 { return v&0xf + (v>>4)*10 }

// Time is a broken-down CMOS time.
type Time struct {
	Year, Month, Day, Hour, Minute, Second int
}

// Read returns the current CMOS time, retrying until two consecutive
// reads agree so an update in the middle cannot tear it. ok is false when
// no plausible clock answers.
//
//go:nosplit
func Read() (t Time, ok bool) {
	var prev Time
	for try := 0; try < 10; try++ {
		for i := 0; i < 100000 && read(STATUS_A)&STATUS_A_UIP != 0; i++ {
		}
		t = readOnce()
		if t == prev {
			return t, t.Month >= 1 && t.Month <= 12 && t.Day >= 1 && t.Day <= 31 && t.Year >= 2000
		}
		prev = t
	}
	return t, false
}

//go:nosplit
func readOnce() Time {
	b := read(STATUS_B)
	sec, min, hour := read(SECONDS), read(MINUTES), read(HOURS)
	day, mon, year, cent := read(DAY), read(MONTH), read(YEAR), read(CENTURY)
	pm := hour&0x80 != 0
	hour &= 0x7f
	if b&STATUS_B_BINARY == 0 {
		sec, min, hour = bcd(sec), bcd(min), bcd(hour)
		day, mon, year, cent = bcd(day), bcd(mon), bcd(year), bcd(cent)
	}
	if b&STATUS_B_24H == 0 {
		hour %= 12
		if pm {
			hour += 12
		}
	}
	c := int(cent)
	if c < 19 || c > 99 {
		c = 20
	}
	return Time{Year: c*100 + int(year), Month: int(mon), Day: int(day), Hour: int(hour), Minute: int(min), Second: int(sec)}
}

// Unix converts a broken-down UTC time to seconds since 1970 without the
// time package (which is not usable before the runtime starts).
//
//go:nosplit
func (t Time) Unix() int64 {
	// days from civil, after Howard Hinnant's public-domain algorithm
	y := int64(t.Year)
	m := int64(t.Month)
	if m <= 2 {
		y--
	}
	era := y / 400
	yoe := y - era*400
	mp := (m + 9) % 12
	doy := (153*mp+2)/5 + int64(t.Day) - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	days := era*146097 + doe - 719468
	return days*86400 + int64(t.Hour)*3600 + int64(t.Minute)*60 + int64(t.Second)
}
