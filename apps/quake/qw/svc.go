package qw

import (
	"fmt"
	"math"
)

// ServerMessage is one svc_* message. Encode writes it, message number
// first; ParseServerMessages reads a payload of them. Every type in this
// file implements it with pointer receivers (&Print{...}). Fields that the
// wire carries as Quake's fixed-point coordinates and angles are float32;
// any value read from the wire re-encodes to the same bytes.
type ServerMessage interface {
	Op() SvcOp
	Encode(w *Writer)
	decode(r *Reader)
}

// ServerNop is svc_nop: no body. Servers send it to keep a connection
// that is loading alive.
type ServerNop struct{}

// Disconnect is svc_disconnect: no body; the client drops the connection.
type Disconnect struct{}

// UpdateStat is svc_updatestat: u8 stat, u8 value (STAT_* below 256).
type UpdateStat struct{ Stat, Value uint8 }

// UpdateStatLong is svc_updatestatlong: u8 stat, i32 value.
type UpdateStatLong struct {
	Stat  uint8
	Value int32
}

// Sound is svc_sound: u16 word (bit 15 volume follows, bit 14 attenuation
// follows, bits 3..13 entity, bits 0..2 channel), [u8 volume],
// [u8 attenuation*64], u8 sound index, 3 coords.
type Sound struct {
	Entity         uint16 // 0..2047 (clients use the low 10 bits)
	Channel        uint8  // 0..7
	HasVolume      bool   // else the client uses 255
	Volume         uint8
	HasAttenuation bool  // else the client uses 1.0
	Attenuation    uint8 // attenuation * 64
	Sound          uint8 // soundlist index
	Origin         [3]float32
}

// StopSound is svc_stopsound: u16 (entity<<3 | channel).
type StopSound struct {
	Entity  uint16 // 0..8191
	Channel uint8  // 0..7
}

// Print is svc_print: u8 level (PRINT_*), string.
type Print struct {
	Level uint8
	Text  string
}

// CenterPrint is svc_centerprint: string.
type CenterPrint struct{ Text string }

// StuffText is svc_stufftext: a string the client runs as console
// commands; it should end in '\n'. The signon is driven with it ("cmd
// spawn ...", "skins", "fullserverinfo ...").
type StuffText struct{ Text string }

// SetAngle is svc_setangle: 3 angles (u8 each), the client's new view.
type SetAngle struct{ Angles [3]float32 }

// MoveVars are the movement constants svc_serverdata sends for client-side
// prediction.
type MoveVars struct {
	Gravity, StopSpeed, MaxSpeed, SpectatorMaxSpeed, Accelerate, AirAccelerate,
	WaterAccelerate, Friction, WaterFriction, EntGravity float32
}

// DefaultMoveVars are the values KTX on mvdsv 0.35 sends (id's defaults,
// but airaccelerate 10 where id has 0.7).
var DefaultMoveVars = MoveVars{
	Gravity: 800, StopSpeed: 100, MaxSpeed: 320, SpectatorMaxSpeed: 500, Accelerate: 10,
	AirAccelerate: 10, WaterAccelerate: 10, Friction: 4, WaterFriction: 4, EntGravity: 1,
}

// ServerData is svc_serverdata, the first message of a signon: [extension
// pairs (u32 id, u32 mask)], i32 protocol 28, i32 servercount, string
// gamedir, u8 player number (|128 for a spectator), string level name, 10
// floats of MoveVars in declaration order.
type ServerData struct {
	Extensions  []Extension // only after the client asked for them; none by default
	ServerCount int32       // echoed in the client's signon commands
	GameDir     string
	PlayerNum   uint8 // 0..127
	Spectator   bool
	LevelName   string
	MoveVars    MoveVars
}

// LightStyle is svc_lightstyle: u8 style, string pattern ("m" is normal).
type LightStyle struct {
	Index uint8
	Style string
}

// UpdateFrags is svc_updatefrags: u8 slot, i16 frags.
type UpdateFrags struct {
	Slot  uint8
	Frags int16
}

// UpdatePing is svc_updateping: u8 slot, i16 ping in milliseconds.
type UpdatePing struct {
	Slot uint8
	Ping int16
}

// UpdatePL is svc_updatepl: u8 slot, u8 packet loss percent.
type UpdatePL struct {
	Slot       uint8
	PacketLoss uint8
}

// UpdateEnterTime is svc_updateentertime: u8 slot, float seconds since the
// player entered (the client subtracts it from its own clock).
type UpdateEnterTime struct {
	Slot    uint8
	Seconds float32
}

// UpdateUserinfo is svc_updateuserinfo: u8 slot, i32 userid, string
// userinfo. An empty userinfo frees the slot.
type UpdateUserinfo struct {
	Slot     uint8
	UserID   int32
	Userinfo string
}

// SetInfo is svc_setinfo: u8 slot, string key, string value.
type SetInfo struct {
	Slot       uint8
	Key, Value string
}

// ServerInfo is svc_serverinfo: string key, string value.
type ServerInfo struct{ Key, Value string }

// Damage is svc_damage: u8 armor, u8 blood, 3 coords of the source.
type Damage struct {
	Armor, Blood uint8
	From         [3]float32
}

// Baseline is the entity state of svc_spawnbaseline and svc_spawnstatic:
// u8 model, u8 frame, u8 colormap, u8 skin, then 3 × (coord, angle).
type Baseline struct {
	Model, Frame, Colormap, Skin uint8
	Origin, Angles               [3]float32
}

// SpawnStatic is svc_spawnstatic: a Baseline for a client-only entity.
type SpawnStatic struct{ Baseline }

// SpawnBaseline is svc_spawnbaseline: u16 entity number, Baseline.
type SpawnBaseline struct {
	Entity uint16
	Baseline
}

// TempEntity is svc_temp_entity: u8 type, then by type: [u8 count] for
// TE_GUNSHOT and TE_BLOOD; [u16 entity, 3 coords start, 3 coords end] for
// the TE_LIGHTNINGs; 3 coords for the others.
type TempEntity struct {
	Type   uint8
	Count  uint8  // TE_GUNSHOT, TE_BLOOD
	Entity uint16 // TE_LIGHTNING1..3
	Origin [3]float32
	End    [3]float32 // TE_LIGHTNING1..3
}

// SetPause is svc_setpause: u8 (1 paused, 0 running).
type SetPause struct{ Paused uint8 }

// KilledMonster is svc_killedmonster: no body.
type KilledMonster struct{}

// FoundSecret is svc_foundsecret: no body.
type FoundSecret struct{}

// SpawnStaticSound is svc_spawnstaticsound: 3 coords, u8 sound, u8
// volume, u8 attenuation.
type SpawnStaticSound struct {
	Origin                     [3]float32
	Sound, Volume, Attenuation uint8
}

// Intermission is svc_intermission: 3 coords, 3 angles (u8).
type Intermission struct{ Origin, Angles [3]float32 }

// Finale is svc_finale: string.
type Finale struct{ Text string }

// CDTrack is svc_cdtrack: u8 track.
type CDTrack struct{ Track uint8 }

// SellScreen is svc_sellscreen: no body.
type SellScreen struct{}

// SmallKick is svc_smallkick: no body (view kick of 2 degrees).
type SmallKick struct{}

// BigKick is svc_bigkick: no body (view kick of 4 degrees).
type BigKick struct{}

// MuzzleFlash is svc_muzzleflash: u16 entity.
type MuzzleFlash struct{ Entity uint16 }

// Download is svc_download: i16 size (-1: file not found), u8 percent
// done, size bytes of the file. The client answers each chunk with
// "nextdl" until percent is 100.
type Download struct {
	NotFound bool
	Percent  uint8
	Data     []byte // at most 32767 bytes; empty when NotFound
}

// PlayerInfo is svc_playerinfo: u8 player, u16 PF_* flags, 3 coords, u8
// frame, then as the flags say: [u8 msec (PF_MSEC)], [delta usercmd from
// the null command (PF_COMMAND)], [i16 velocity per PF_VELOCITY1..3], [u8
// model (PF_MODEL)], [u8 skin (PF_SKINNUM)], [u8 effects (PF_EFFECTS)],
// [u8 weaponframe (PF_WEAPONFRAME)]. The flags are sent as given; fields
// without their flag are not written and read as zero. A server sends its
// own player without PF_MSEC and PF_COMMAND.
type PlayerInfo struct {
	Num         uint8
	Flags       uint16
	Origin      [3]float32
	Frame       uint8
	Msec        uint8    // PF_MSEC: time since the player's last command
	Cmd         UserCmd  // PF_COMMAND: the player's last command
	Velocity    [3]int16 // PF_VELOCITY1..3
	Model       uint8    // PF_MODEL
	Skin        uint8    // PF_SKINNUM
	Effects     uint8    // PF_EFFECTS
	WeaponFrame uint8    // PF_WEAPONFRAME
}

// MoveType returns the PMC_* move type in the flags.
func (p *PlayerInfo) MoveType() uint8 { return uint8(p.Flags>>PF_PMC_SHIFT) & PF_PMC_MASK }

// Nails is svc_nails: u8 count, count × 6 bytes of packed projectile
// position and angles (12+12+12 bits origin, 4 bits pitch, 8 bits yaw).
type Nails struct{ Projectiles [][6]byte }

// ChokeCount is svc_chokecount: u8 packets the server did not send for
// rate limiting.
type ChokeCount struct{ Count uint8 }

// ModelList is svc_modellist: u8 first index, names (entry 1 is the map's
// maps/<name>.bsp, then *1.. inline models), an empty string, u8 next
// index to ask for with "modellist <servercount> <next>" (0: complete).
type ModelList struct {
	Start uint8
	Names []string // non-empty strings
	Next  uint8
}

// SoundList is svc_soundlist, laid out as ModelList.
type SoundList struct {
	Start uint8
	Names []string
	Next  uint8
}

// PacketEntities is svc_packetentities: the full list of visible entities,
// each a delta against its baseline, ending with a 0 word. A client goes
// active on the first one; sending it full every frame is legal (a server
// need not honour clc_delta).
type PacketEntities struct{ Entities []EntityDelta }

// DeltaPacketEntities is svc_deltapacketentities: u8 the frame (sequence &
// 255) the deltas are against, then entries as PacketEntities.
type DeltaPacketEntities struct {
	From     uint8
	Entities []EntityDelta
}

// MaxSpeed is svc_maxspeed: float.
type MaxSpeed struct{ Value float32 }

// EntGravity is svc_entgravity: float.
type EntGravity struct{ Value float32 }

func (*ServerNop) Op() SvcOp           { return SvcNop }
func (*Disconnect) Op() SvcOp          { return SvcDisconnect }
func (*UpdateStat) Op() SvcOp          { return SvcUpdateStat }
func (*UpdateStatLong) Op() SvcOp      { return SvcUpdateStatLong }
func (*Sound) Op() SvcOp               { return SvcSound }
func (*StopSound) Op() SvcOp           { return SvcStopSound }
func (*Print) Op() SvcOp               { return SvcPrint }
func (*CenterPrint) Op() SvcOp         { return SvcCenterPrint }
func (*StuffText) Op() SvcOp           { return SvcStuffText }
func (*SetAngle) Op() SvcOp            { return SvcSetAngle }
func (*ServerData) Op() SvcOp          { return SvcServerData }
func (*LightStyle) Op() SvcOp          { return SvcLightStyle }
func (*UpdateFrags) Op() SvcOp         { return SvcUpdateFrags }
func (*UpdatePing) Op() SvcOp          { return SvcUpdatePing }
func (*UpdatePL) Op() SvcOp            { return SvcUpdatePL }
func (*UpdateEnterTime) Op() SvcOp     { return SvcUpdateEnterTime }
func (*UpdateUserinfo) Op() SvcOp      { return SvcUpdateUserinfo }
func (*SetInfo) Op() SvcOp             { return SvcSetInfo }
func (*ServerInfo) Op() SvcOp          { return SvcServerInfo }
func (*Damage) Op() SvcOp              { return SvcDamage }
func (*SpawnStatic) Op() SvcOp         { return SvcSpawnStatic }
func (*SpawnBaseline) Op() SvcOp       { return SvcSpawnBaseline }
func (*TempEntity) Op() SvcOp          { return SvcTempEntity }
func (*SetPause) Op() SvcOp            { return SvcSetPause }
func (*KilledMonster) Op() SvcOp       { return SvcKilledMonster }
func (*FoundSecret) Op() SvcOp         { return SvcFoundSecret }
func (*SpawnStaticSound) Op() SvcOp    { return SvcSpawnStaticSound }
func (*Intermission) Op() SvcOp        { return SvcIntermission }
func (*Finale) Op() SvcOp              { return SvcFinale }
func (*CDTrack) Op() SvcOp             { return SvcCDTrack }
func (*SellScreen) Op() SvcOp          { return SvcSellScreen }
func (*SmallKick) Op() SvcOp           { return SvcSmallKick }
func (*BigKick) Op() SvcOp             { return SvcBigKick }
func (*MuzzleFlash) Op() SvcOp         { return SvcMuzzleFlash }
func (*Download) Op() SvcOp            { return SvcDownload }
func (*PlayerInfo) Op() SvcOp          { return SvcPlayerInfo }
func (*Nails) Op() SvcOp               { return SvcNails }
func (*ChokeCount) Op() SvcOp          { return SvcChokeCount }
func (*ModelList) Op() SvcOp           { return SvcModelList }
func (*SoundList) Op() SvcOp           { return SvcSoundList }
func (*PacketEntities) Op() SvcOp      { return SvcPacketEntities }
func (*DeltaPacketEntities) Op() SvcOp { return SvcDeltaPacketEntities }
func (*MaxSpeed) Op() SvcOp            { return SvcMaxSpeed }
func (*EntGravity) Op() SvcOp          { return SvcEntGravity }

// newServerMessage returns an empty message for op, or nil if op is not a
// protocol 28 server message.
func newServerMessage(op SvcOp) ServerMessage {
	switch op {
	case SvcNop:
		return &ServerNop{}
	case SvcDisconnect:
		return &Disconnect{}
	case SvcUpdateStat:
		return &UpdateStat{}
	case SvcUpdateStatLong:
		return &UpdateStatLong{}
	case SvcSound:
		return &Sound{}
	case SvcStopSound:
		return &StopSound{}
	case SvcPrint:
		return &Print{}
	case SvcCenterPrint:
		return &CenterPrint{}
	case SvcStuffText:
		return &StuffText{}
	case SvcSetAngle:
		return &SetAngle{}
	case SvcServerData:
		return &ServerData{}
	case SvcLightStyle:
		return &LightStyle{}
	case SvcUpdateFrags:
		return &UpdateFrags{}
	case SvcUpdatePing:
		return &UpdatePing{}
	case SvcUpdatePL:
		return &UpdatePL{}
	case SvcUpdateEnterTime:
		return &UpdateEnterTime{}
	case SvcUpdateUserinfo:
		return &UpdateUserinfo{}
	case SvcSetInfo:
		return &SetInfo{}
	case SvcServerInfo:
		return &ServerInfo{}
	case SvcDamage:
		return &Damage{}
	case SvcSpawnStatic:
		return &SpawnStatic{}
	case SvcSpawnBaseline:
		return &SpawnBaseline{}
	case SvcTempEntity:
		return &TempEntity{}
	case SvcSetPause:
		return &SetPause{}
	case SvcKilledMonster:
		return &KilledMonster{}
	case SvcFoundSecret:
		return &FoundSecret{}
	case SvcSpawnStaticSound:
		return &SpawnStaticSound{}
	case SvcIntermission:
		return &Intermission{}
	case SvcFinale:
		return &Finale{}
	case SvcCDTrack:
		return &CDTrack{}
	case SvcSellScreen:
		return &SellScreen{}
	case SvcSmallKick:
		return &SmallKick{}
	case SvcBigKick:
		return &BigKick{}
	case SvcMuzzleFlash:
		return &MuzzleFlash{}
	case SvcDownload:
		return &Download{}
	case SvcPlayerInfo:
		return &PlayerInfo{}
	case SvcNails:
		return &Nails{}
	case SvcChokeCount:
		return &ChokeCount{}
	case SvcModelList:
		return &ModelList{}
	case SvcSoundList:
		return &SoundList{}
	case SvcPacketEntities:
		return &PacketEntities{}
	case SvcDeltaPacketEntities:
		return &DeltaPacketEntities{}
	case SvcMaxSpeed:
		return &MaxSpeed{}
	case SvcEntGravity:
		return &EntGravity{}
	}
	return nil
}

func (w *Writer) svc(op SvcOp) { w.Byte(uint8(op)) }

func (w *Writer) coords(v [3]float32) {
	for _, c := range v {
		w.Coord(c)
	}
}

func (r *Reader) coords() (v [3]float32) {
	for i := range v {
		v[i] = r.Coord()
	}
	return v
}

func (w *Writer) angles(v [3]float32) {
	for _, a := range v {
		w.Angle(a)
	}
}

func (r *Reader) angles() (v [3]float32) {
	for i := range v {
		v[i] = r.Angle()
	}
	return v
}

func (m *ServerNop) Encode(w *Writer)  { w.svc(m.Op()) }
func (m *ServerNop) decode(r *Reader)  {}
func (m *Disconnect) Encode(w *Writer) { w.svc(m.Op()) }
func (m *Disconnect) decode(r *Reader) {}

func (m *UpdateStat) Encode(w *Writer) { w.svc(m.Op()); w.Byte(m.Stat); w.Byte(m.Value) }
func (m *UpdateStat) decode(r *Reader) { m.Stat, m.Value = r.Byte(), r.Byte() }

func (m *UpdateStatLong) Encode(w *Writer) { w.svc(m.Op()); w.Byte(m.Stat); w.Long(m.Value) }
func (m *UpdateStatLong) decode(r *Reader) { m.Stat, m.Value = r.Byte(), r.Long() }

func (m *Sound) Encode(w *Writer) {
	if m.Entity > 2047 || m.Channel > 7 {
		w.Fail(fmt.Errorf("%w: svc_sound entity %d (max 2047) channel %d (max 7)", ErrUnencodable, m.Entity, m.Channel))
		return
	}
	word := m.Entity<<3 | uint16(m.Channel)
	if m.HasVolume {
		word |= SND_VOLUME
	}
	if m.HasAttenuation {
		word |= SND_ATTENUATION
	}
	w.svc(m.Op())
	w.UShort(word)
	if m.HasVolume {
		w.Byte(m.Volume)
	}
	if m.HasAttenuation {
		w.Byte(m.Attenuation)
	}
	w.Byte(m.Sound)
	w.coords(m.Origin)
}

func (m *Sound) decode(r *Reader) {
	word := r.UShort()
	m.HasVolume, m.HasAttenuation = word&SND_VOLUME != 0, word&SND_ATTENUATION != 0
	m.Entity, m.Channel = word>>3&2047, uint8(word&7)
	if m.HasVolume {
		m.Volume = r.Byte()
	}
	if m.HasAttenuation {
		m.Attenuation = r.Byte()
	}
	m.Sound = r.Byte()
	m.Origin = r.coords()
}

func (m *StopSound) Encode(w *Writer) {
	if m.Entity > 8191 || m.Channel > 7 {
		w.Fail(fmt.Errorf("%w: svc_stopsound entity %d (max 8191) channel %d (max 7)", ErrUnencodable, m.Entity, m.Channel))
		return
	}
	w.svc(m.Op())
	w.UShort(m.Entity<<3 | uint16(m.Channel))
}

func (m *StopSound) decode(r *Reader) {
	v := r.UShort()
	m.Entity, m.Channel = v>>3, uint8(v&7)
}

func (m *Print) Encode(w *Writer) { w.svc(m.Op()); w.Byte(m.Level); w.Str(m.Text) }
func (m *Print) decode(r *Reader) { m.Level, m.Text = r.Byte(), r.Str() }

func (m *CenterPrint) Encode(w *Writer) { w.svc(m.Op()); w.Str(m.Text) }
func (m *CenterPrint) decode(r *Reader) { m.Text = r.Str() }

func (m *StuffText) Encode(w *Writer) { w.svc(m.Op()); w.Str(m.Text) }
func (m *StuffText) decode(r *Reader) { m.Text = r.Str() }

func (m *SetAngle) Encode(w *Writer) { w.svc(m.Op()); w.angles(m.Angles) }
func (m *SetAngle) decode(r *Reader) { m.Angles = r.angles() }

func (m *ServerData) Encode(w *Writer) {
	if m.PlayerNum > 127 {
		w.Fail(fmt.Errorf("%w: svc_serverdata player number %d over 127", ErrUnencodable, m.PlayerNum))
		return
	}
	w.svc(m.Op())
	for _, e := range m.Extensions {
		if !knownExtension(e.ID) {
			w.Fail(fmt.Errorf("%w: svc_serverdata extension id %#08x is not FTEX, FTE2 or MVD1", ErrUnencodable, e.ID))
			return
		}
		w.ULong(e.ID)
		w.ULong(e.Mask)
	}
	w.Long(ProtocolVersion)
	w.Long(m.ServerCount)
	w.Str(m.GameDir)
	pn := m.PlayerNum
	if m.Spectator {
		pn |= 128
	}
	w.Byte(pn)
	w.Str(m.LevelName)
	mv := &m.MoveVars
	for _, f := range [...]float32{mv.Gravity, mv.StopSpeed, mv.MaxSpeed, mv.SpectatorMaxSpeed, mv.Accelerate,
		mv.AirAccelerate, mv.WaterAccelerate, mv.Friction, mv.WaterFriction, mv.EntGravity} {
		w.Float(f)
	}
}

func (m *ServerData) decode(r *Reader) {
	for {
		v := r.ULong()
		if r.Err() != nil {
			return
		}
		if v == ProtocolVersion {
			break
		}
		if !knownExtension(v) {
			r.Failf("svc_serverdata: protocol %d, want %d", int32(v), ProtocolVersion)
			return
		}
		m.Extensions = append(m.Extensions, Extension{ID: v, Mask: r.ULong()})
	}
	m.ServerCount = r.Long()
	m.GameDir = r.Str()
	pn := r.Byte()
	m.PlayerNum, m.Spectator = pn&127, pn&128 != 0
	m.LevelName = r.Str()
	mv := &m.MoveVars
	for _, f := range [...]*float32{&mv.Gravity, &mv.StopSpeed, &mv.MaxSpeed, &mv.SpectatorMaxSpeed, &mv.Accelerate,
		&mv.AirAccelerate, &mv.WaterAccelerate, &mv.Friction, &mv.WaterFriction, &mv.EntGravity} {
		*f = r.Float()
	}
}

func (m *LightStyle) Encode(w *Writer) { w.svc(m.Op()); w.Byte(m.Index); w.Str(m.Style) }
func (m *LightStyle) decode(r *Reader) { m.Index, m.Style = r.Byte(), r.Str() }

func (m *UpdateFrags) Encode(w *Writer) { w.svc(m.Op()); w.Byte(m.Slot); w.Short(m.Frags) }
func (m *UpdateFrags) decode(r *Reader) { m.Slot, m.Frags = r.Byte(), r.Short() }

func (m *UpdatePing) Encode(w *Writer) { w.svc(m.Op()); w.Byte(m.Slot); w.Short(m.Ping) }
func (m *UpdatePing) decode(r *Reader) { m.Slot, m.Ping = r.Byte(), r.Short() }

func (m *UpdatePL) Encode(w *Writer) { w.svc(m.Op()); w.Byte(m.Slot); w.Byte(m.PacketLoss) }
func (m *UpdatePL) decode(r *Reader) { m.Slot, m.PacketLoss = r.Byte(), r.Byte() }

func (m *UpdateEnterTime) Encode(w *Writer) { w.svc(m.Op()); w.Byte(m.Slot); w.Float(m.Seconds) }
func (m *UpdateEnterTime) decode(r *Reader) { m.Slot, m.Seconds = r.Byte(), r.Float() }

func (m *UpdateUserinfo) Encode(w *Writer) {
	w.svc(m.Op())
	w.Byte(m.Slot)
	w.Long(m.UserID)
	w.Str(m.Userinfo)
}
func (m *UpdateUserinfo) decode(r *Reader) {
	m.Slot, m.UserID, m.Userinfo = r.Byte(), r.Long(), r.Str()
}

func (m *SetInfo) Encode(w *Writer) { w.svc(m.Op()); w.Byte(m.Slot); w.Str(m.Key); w.Str(m.Value) }
func (m *SetInfo) decode(r *Reader) { m.Slot, m.Key, m.Value = r.Byte(), r.Str(), r.Str() }

func (m *ServerInfo) Encode(w *Writer) { w.svc(m.Op()); w.Str(m.Key); w.Str(m.Value) }
func (m *ServerInfo) decode(r *Reader) { m.Key, m.Value = r.Str(), r.Str() }

func (m *Damage) Encode(w *Writer) {
	w.svc(m.Op())
	w.Byte(m.Armor)
	w.Byte(m.Blood)
	w.coords(m.From)
}
func (m *Damage) decode(r *Reader) { m.Armor, m.Blood, m.From = r.Byte(), r.Byte(), r.coords() }

func (w *Writer) baseline(b *Baseline) {
	w.Byte(b.Model)
	w.Byte(b.Frame)
	w.Byte(b.Colormap)
	w.Byte(b.Skin)
	for i := range 3 {
		w.Coord(b.Origin[i])
		w.Angle(b.Angles[i])
	}
}

func (r *Reader) baseline(b *Baseline) {
	b.Model, b.Frame, b.Colormap, b.Skin = r.Byte(), r.Byte(), r.Byte(), r.Byte()
	for i := range 3 {
		b.Origin[i] = r.Coord()
		b.Angles[i] = r.Angle()
	}
}

func (m *SpawnStatic) Encode(w *Writer) { w.svc(m.Op()); w.baseline(&m.Baseline) }
func (m *SpawnStatic) decode(r *Reader) { r.baseline(&m.Baseline) }

func (m *SpawnBaseline) Encode(w *Writer) { w.svc(m.Op()); w.UShort(m.Entity); w.baseline(&m.Baseline) }
func (m *SpawnBaseline) decode(r *Reader) { m.Entity = r.UShort(); r.baseline(&m.Baseline) }

// State returns the baseline as the EntityState entity deltas are applied
// to.
func (m *SpawnBaseline) State() EntityState {
	b := &m.Baseline
	return EntityState{Number: m.Entity, Model: b.Model, Frame: b.Frame, Colormap: b.Colormap, Skin: b.Skin,
		Origin: b.Origin, Angles: b.Angles}
}

func (m *TempEntity) Encode(w *Writer) {
	switch m.Type {
	case TE_SPIKE, TE_SUPERSPIKE, TE_EXPLOSION, TE_TAREXPLOSION, TE_WIZSPIKE, TE_KNIGHTSPIKE,
		TE_LAVASPLASH, TE_TELEPORT, TE_LIGHTNINGBLOOD:
		w.svc(m.Op())
		w.Byte(m.Type)
		w.coords(m.Origin)
	case TE_GUNSHOT, TE_BLOOD:
		w.svc(m.Op())
		w.Byte(m.Type)
		w.Byte(m.Count)
		w.coords(m.Origin)
	case TE_LIGHTNING1, TE_LIGHTNING2, TE_LIGHTNING3:
		w.svc(m.Op())
		w.Byte(m.Type)
		w.UShort(m.Entity)
		w.coords(m.Origin)
		w.coords(m.End)
	default:
		w.Fail(fmt.Errorf("%w: svc_temp_entity type %d", ErrUnencodable, m.Type))
	}
}

func (m *TempEntity) decode(r *Reader) {
	m.Type = r.Byte()
	switch m.Type {
	case TE_SPIKE, TE_SUPERSPIKE, TE_EXPLOSION, TE_TAREXPLOSION, TE_WIZSPIKE, TE_KNIGHTSPIKE,
		TE_LAVASPLASH, TE_TELEPORT, TE_LIGHTNINGBLOOD:
		m.Origin = r.coords()
	case TE_GUNSHOT, TE_BLOOD:
		m.Count = r.Byte()
		m.Origin = r.coords()
	case TE_LIGHTNING1, TE_LIGHTNING2, TE_LIGHTNING3:
		m.Entity = r.UShort()
		m.Origin = r.coords()
		m.End = r.coords()
	default:
		if r.Err() == nil {
			r.Failf("svc_temp_entity: unknown type %d", m.Type)
		}
	}
}

func (m *SetPause) Encode(w *Writer) { w.svc(m.Op()); w.Byte(m.Paused) }
func (m *SetPause) decode(r *Reader) { m.Paused = r.Byte() }

func (m *KilledMonster) Encode(w *Writer) { w.svc(m.Op()) }
func (m *KilledMonster) decode(r *Reader) {}
func (m *FoundSecret) Encode(w *Writer)   { w.svc(m.Op()) }
func (m *FoundSecret) decode(r *Reader)   {}
func (m *SellScreen) Encode(w *Writer)    { w.svc(m.Op()) }
func (m *SellScreen) decode(r *Reader)    {}
func (m *SmallKick) Encode(w *Writer)     { w.svc(m.Op()) }
func (m *SmallKick) decode(r *Reader)     {}
func (m *BigKick) Encode(w *Writer)       { w.svc(m.Op()) }
func (m *BigKick) decode(r *Reader)       {}

func (m *SpawnStaticSound) Encode(w *Writer) {
	w.svc(m.Op())
	w.coords(m.Origin)
	w.Byte(m.Sound)
	w.Byte(m.Volume)
	w.Byte(m.Attenuation)
}

func (m *SpawnStaticSound) decode(r *Reader) {
	m.Origin = r.coords()
	m.Sound, m.Volume, m.Attenuation = r.Byte(), r.Byte(), r.Byte()
}

func (m *Intermission) Encode(w *Writer) { w.svc(m.Op()); w.coords(m.Origin); w.angles(m.Angles) }
func (m *Intermission) decode(r *Reader) { m.Origin, m.Angles = r.coords(), r.angles() }

func (m *Finale) Encode(w *Writer) { w.svc(m.Op()); w.Str(m.Text) }
func (m *Finale) decode(r *Reader) { m.Text = r.Str() }

func (m *CDTrack) Encode(w *Writer) { w.svc(m.Op()); w.Byte(m.Track) }
func (m *CDTrack) decode(r *Reader) { m.Track = r.Byte() }

func (m *MuzzleFlash) Encode(w *Writer) { w.svc(m.Op()); w.UShort(m.Entity) }
func (m *MuzzleFlash) decode(r *Reader) { m.Entity = r.UShort() }

func (m *Download) Encode(w *Writer) {
	switch {
	case m.NotFound && len(m.Data) > 0:
		w.Fail(fmt.Errorf("%w: svc_download: not-found reply with %d bytes of data", ErrUnencodable, len(m.Data)))
		return
	case len(m.Data) > math.MaxInt16:
		w.Fail(fmt.Errorf("%w: svc_download chunk of %d bytes, max %d", ErrUnencodable, len(m.Data), math.MaxInt16))
		return
	}
	w.svc(m.Op())
	if m.NotFound {
		w.Short(-1)
	} else {
		w.Short(int16(len(m.Data)))
	}
	w.Byte(m.Percent)
	w.Data(m.Data)
}

func (m *Download) decode(r *Reader) {
	size := r.Short()
	m.Percent = r.Byte()
	switch {
	case size == -1:
		m.NotFound = true
	case size < -1:
		if r.Err() == nil {
			r.Failf("svc_download: size %d", size)
		}
	case size > 0:
		m.Data = append([]byte(nil), r.Bytes(int(size))...)
	}
}

func (m *PlayerInfo) Encode(w *Writer) {
	w.svc(m.Op())
	w.Byte(m.Num)
	w.UShort(m.Flags)
	w.coords(m.Origin)
	w.Byte(m.Frame)
	f := m.Flags
	if f&PF_MSEC != 0 {
		w.Byte(m.Msec)
	}
	if f&PF_COMMAND != 0 {
		w.DeltaUserCmd(&UserCmd{}, &m.Cmd)
	}
	for i, bit := range [3]uint16{PF_VELOCITY1, PF_VELOCITY2, PF_VELOCITY3} {
		if f&bit != 0 {
			w.Short(m.Velocity[i])
		}
	}
	if f&PF_MODEL != 0 {
		w.Byte(m.Model)
	}
	if f&PF_SKINNUM != 0 {
		w.Byte(m.Skin)
	}
	if f&PF_EFFECTS != 0 {
		w.Byte(m.Effects)
	}
	if f&PF_WEAPONFRAME != 0 {
		w.Byte(m.WeaponFrame)
	}
}

func (m *PlayerInfo) decode(r *Reader) {
	m.Num = r.Byte()
	m.Flags = r.UShort()
	m.Origin = r.coords()
	m.Frame = r.Byte()
	f := m.Flags
	if f&PF_MSEC != 0 {
		m.Msec = r.Byte()
	}
	if f&PF_COMMAND != 0 {
		m.Cmd = r.DeltaUserCmd(&UserCmd{})
	}
	for i, bit := range [3]uint16{PF_VELOCITY1, PF_VELOCITY2, PF_VELOCITY3} {
		if f&bit != 0 {
			m.Velocity[i] = r.Short()
		}
	}
	if f&PF_MODEL != 0 {
		m.Model = r.Byte()
	}
	if f&PF_SKINNUM != 0 {
		m.Skin = r.Byte()
	}
	if f&PF_EFFECTS != 0 {
		m.Effects = r.Byte()
	}
	if f&PF_WEAPONFRAME != 0 {
		m.WeaponFrame = r.Byte()
	}
}

func (m *Nails) Encode(w *Writer) {
	if len(m.Projectiles) > 255 {
		w.Fail(fmt.Errorf("%w: svc_nails with %d projectiles, max 255", ErrUnencodable, len(m.Projectiles)))
		return
	}
	w.svc(m.Op())
	w.Byte(uint8(len(m.Projectiles)))
	for i := range m.Projectiles {
		w.Data(m.Projectiles[i][:])
	}
}

func (m *Nails) decode(r *Reader) {
	n := int(r.Byte())
	for i := 0; i < n && r.Err() == nil; i++ {
		var p [6]byte
		copy(p[:], r.Bytes(6))
		if r.Err() == nil {
			m.Projectiles = append(m.Projectiles, p)
		}
	}
}

func (m *ChokeCount) Encode(w *Writer) { w.svc(m.Op()); w.Byte(m.Count) }
func (m *ChokeCount) decode(r *Reader) { m.Count = r.Byte() }

func (w *Writer) nameList(op SvcOp, start uint8, names []string, next uint8) {
	for _, n := range names {
		if n == "" {
			w.Fail(fmt.Errorf("%w: %s: an empty name would end the list", ErrUnencodable, op))
			return
		}
	}
	w.svc(op)
	w.Byte(start)
	for _, n := range names {
		w.Str(n)
	}
	w.Byte(0)
	w.Byte(next)
}

func (r *Reader) nameList() (start uint8, names []string, next uint8) {
	start = r.Byte()
	for r.Err() == nil {
		s := r.Str()
		if s == "" {
			break
		}
		names = append(names, s)
	}
	return start, names, r.Byte()
}

func (m *ModelList) Encode(w *Writer) { w.nameList(m.Op(), m.Start, m.Names, m.Next) }
func (m *ModelList) decode(r *Reader) { m.Start, m.Names, m.Next = r.nameList() }
func (m *SoundList) Encode(w *Writer) { w.nameList(m.Op(), m.Start, m.Names, m.Next) }
func (m *SoundList) decode(r *Reader) { m.Start, m.Names, m.Next = r.nameList() }

func (m *PacketEntities) Encode(w *Writer) { w.svc(m.Op()); w.entityList(m.Entities) }
func (m *PacketEntities) decode(r *Reader) { m.Entities = r.entityList() }

func (m *DeltaPacketEntities) Encode(w *Writer) {
	w.svc(m.Op())
	w.Byte(m.From)
	w.entityList(m.Entities)
}
func (m *DeltaPacketEntities) decode(r *Reader) { m.From = r.Byte(); m.Entities = r.entityList() }

func (m *MaxSpeed) Encode(w *Writer)   { w.svc(m.Op()); w.Float(m.Value) }
func (m *MaxSpeed) decode(r *Reader)   { m.Value = r.Float() }
func (m *EntGravity) Encode(w *Writer) { w.svc(m.Op()); w.Float(m.Value) }
func (m *EntGravity) decode(r *Reader) { m.Value = r.Float() }
