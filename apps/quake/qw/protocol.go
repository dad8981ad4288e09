package qw

import "fmt"

// Protocol numbers and limits of QuakeWorld protocol 28, as id's protocol.h
// defines them and mvdsv 0.35 / ezquake 3.6.1 still use them. Bit and enum
// constants keep protocol.h's spelling (PF_MSEC, U_ORIGIN1, CM_ANGLE1, ...)
// so they can be compared with the C sources line by line; the message
// numbers are typed (SvcOp, ClcOp) so a server message can never be passed
// where a client one is expected.
const (
	// ProtocolVersion is the only protocol this package speaks: the first
	// long of svc_serverdata and the first argument of "connect".
	ProtocolVersion = 28

	PortClient = 27001 // default client UDP port
	PortServer = 27500 // default server UDP port

	// MaxMsgLen is the largest netchan payload (reliable plus unreliable
	// part) a peer builds: mvdsv's MAX_MSGLEN. A packet is at most
	// MaxMsgLen+8 bytes, header included (mvdsv's send buffer), so a client
	// packet, whose header is 10 bytes, carries at most 1448.
	MaxMsgLen = 1450
	// MaxPacketLen is the largest packet a Channel sends: MaxMsgLen plus the
	// 8-byte sequence/ack header.
	MaxPacketLen = MaxMsgLen + 8

	MaxClients = 32 // player slots (MAX_CLIENTS)
	// MaxPacketEntities is the number of entities an unextended client
	// accepts in one svc_packetentities (MAX_PACKET_ENTITIES). The decoder
	// does not enforce it; a server must not send more.
	MaxPacketEntities = 64
	// UpdateBackup is the number of frames both sides remember, indexed by
	// sequence & (UpdateBackup-1) (UPDATE_BACKUP).
	UpdateBackup = 64
	// MaxLightStyles is the number of svc_lightstyle slots a client keeps.
	MaxLightStyles = 64
)

// Out-of-band (connectionless) message bytes: the first byte after the
// 0xffffffff prefix of a reply, or the one-byte ping.
const (
	S2C_CHALLENGE  = 'c' // challenge reply to "getchallenge"
	S2C_CONNECTION = 'j' // connect accepted
	A2A_PING       = 'k' // ping request (also spelled "ping")
	A2A_ACK        = 'l' // ping reply; mvdsv sends it without the prefix
	A2A_NACK       = 'm' // general failure (log replies)
	A2C_PRINT      = 'n' // text: status reply, refusal, rcon output
)

// Protocol extension identifiers (FTE and mvdsv). They may precede the
// protocol number in svc_serverdata and follow the challenge in its reply;
// this package transports them but negotiates none, because each one changes
// the layout of other messages (float coords, 256 entities, ...).
const (
	PROTOCOL_VERSION_FTE  uint32 = 'F' | 'T'<<8 | 'E'<<16 | 'X'<<24 // 0x58455446
	PROTOCOL_VERSION_FTE2 uint32 = 'F' | 'T'<<8 | 'E'<<16 | '2'<<24 // 0x32455446
	PROTOCOL_VERSION_MVD1 uint32 = 'M' | 'V'<<8 | 'D'<<16 | '1'<<24 // 0x3144564d
)

// knownExtension reports whether id is one of the extension identifiers
// above; svc_serverdata needs it to tell an extension pair from a wrong
// protocol number.
func knownExtension(id uint32) bool {
	return id == PROTOCOL_VERSION_FTE || id == PROTOCOL_VERSION_FTE2 || id == PROTOCOL_VERSION_MVD1
}

// Extension is one (identifier, feature mask) pair.
type Extension struct {
	ID   uint32
	Mask uint32
}

// SvcOp is a server-to-client message number (svc_*).
type SvcOp uint8

// Server-to-client message numbers. Numbers missing here (4, 5, 7, 13, 15,
// 17, 18, 21, 25, 54+) are NetQuake leftovers, MVD-demo-only or extension
// messages that an unextended protocol 28 client rejects.
const (
	SvcBad                 SvcOp = 0
	SvcNop                 SvcOp = 1
	SvcDisconnect          SvcOp = 2
	SvcUpdateStat          SvcOp = 3
	SvcSound               SvcOp = 6
	SvcPrint               SvcOp = 8
	SvcStuffText           SvcOp = 9
	SvcSetAngle            SvcOp = 10
	SvcServerData          SvcOp = 11
	SvcLightStyle          SvcOp = 12
	SvcUpdateFrags         SvcOp = 14
	SvcStopSound           SvcOp = 16
	SvcDamage              SvcOp = 19
	SvcSpawnStatic         SvcOp = 20
	SvcSpawnBaseline       SvcOp = 22
	SvcTempEntity          SvcOp = 23
	SvcSetPause            SvcOp = 24
	SvcCenterPrint         SvcOp = 26
	SvcKilledMonster       SvcOp = 27
	SvcFoundSecret         SvcOp = 28
	SvcSpawnStaticSound    SvcOp = 29
	SvcIntermission        SvcOp = 30
	SvcFinale              SvcOp = 31
	SvcCDTrack             SvcOp = 32
	SvcSellScreen          SvcOp = 33
	SvcSmallKick           SvcOp = 34
	SvcBigKick             SvcOp = 35
	SvcUpdatePing          SvcOp = 36
	SvcUpdateEnterTime     SvcOp = 37
	SvcUpdateStatLong      SvcOp = 38
	SvcMuzzleFlash         SvcOp = 39
	SvcUpdateUserinfo      SvcOp = 40
	SvcDownload            SvcOp = 41
	SvcPlayerInfo          SvcOp = 42
	SvcNails               SvcOp = 43
	SvcChokeCount          SvcOp = 44
	SvcModelList           SvcOp = 45
	SvcSoundList           SvcOp = 46
	SvcPacketEntities      SvcOp = 47
	SvcDeltaPacketEntities SvcOp = 48
	SvcMaxSpeed            SvcOp = 49
	SvcEntGravity          SvcOp = 50
	SvcSetInfo             SvcOp = 51
	SvcServerInfo          SvcOp = 52
	SvcUpdatePL            SvcOp = 53
)

var svcNames = map[SvcOp]string{
	SvcBad: "svc_bad", SvcNop: "svc_nop", SvcDisconnect: "svc_disconnect",
	SvcUpdateStat: "svc_updatestat", SvcSound: "svc_sound", SvcPrint: "svc_print",
	SvcStuffText: "svc_stufftext", SvcSetAngle: "svc_setangle", SvcServerData: "svc_serverdata",
	SvcLightStyle: "svc_lightstyle", SvcUpdateFrags: "svc_updatefrags", SvcStopSound: "svc_stopsound",
	SvcDamage: "svc_damage", SvcSpawnStatic: "svc_spawnstatic", SvcSpawnBaseline: "svc_spawnbaseline",
	SvcTempEntity: "svc_temp_entity", SvcSetPause: "svc_setpause", SvcCenterPrint: "svc_centerprint",
	SvcKilledMonster: "svc_killedmonster", SvcFoundSecret: "svc_foundsecret",
	SvcSpawnStaticSound: "svc_spawnstaticsound", SvcIntermission: "svc_intermission",
	SvcFinale: "svc_finale", SvcCDTrack: "svc_cdtrack", SvcSellScreen: "svc_sellscreen",
	SvcSmallKick: "svc_smallkick", SvcBigKick: "svc_bigkick", SvcUpdatePing: "svc_updateping",
	SvcUpdateEnterTime: "svc_updateentertime", SvcUpdateStatLong: "svc_updatestatlong",
	SvcMuzzleFlash: "svc_muzzleflash", SvcUpdateUserinfo: "svc_updateuserinfo",
	SvcDownload: "svc_download", SvcPlayerInfo: "svc_playerinfo", SvcNails: "svc_nails",
	SvcChokeCount: "svc_chokecount", SvcModelList: "svc_modellist", SvcSoundList: "svc_soundlist",
	SvcPacketEntities: "svc_packetentities", SvcDeltaPacketEntities: "svc_deltapacketentities",
	SvcMaxSpeed: "svc_maxspeed", SvcEntGravity: "svc_entgravity", SvcSetInfo: "svc_setinfo",
	SvcServerInfo: "svc_serverinfo", SvcUpdatePL: "svc_updatepl",
}

// String returns protocol.h's name, or "svc_<n>" for a number it lacks.
func (op SvcOp) String() string {
	if s, ok := svcNames[op]; ok {
		return s
	}
	return fmt.Sprintf("svc_%d", uint8(op))
}

// ClcOp is a client-to-server message number (clc_*).
type ClcOp uint8

// Client-to-server message numbers.
const (
	ClcBad       ClcOp = 0
	ClcNop       ClcOp = 1
	ClcMove      ClcOp = 3
	ClcStringCmd ClcOp = 4
	ClcDelta     ClcOp = 5
	ClcTMove     ClcOp = 6
	ClcUpload    ClcOp = 7
)

var clcNames = map[ClcOp]string{
	ClcBad: "clc_bad", ClcNop: "clc_nop", ClcMove: "clc_move", ClcStringCmd: "clc_stringcmd",
	ClcDelta: "clc_delta", ClcTMove: "clc_tmove", ClcUpload: "clc_upload",
}

// String returns protocol.h's name, or "clc_<n>" for a number it lacks.
func (op ClcOp) String() string {
	if s, ok := clcNames[op]; ok {
		return s
	}
	return fmt.Sprintf("clc_%d", uint8(op))
}

// svc_playerinfo flag bits (the u16 after the player number). PF_MSEC to
// PF_WEAPONFRAME say which optional fields follow; the rest are state.
const (
	PF_MSEC        = 1 << 0
	PF_COMMAND     = 1 << 1
	PF_VELOCITY1   = 1 << 2
	PF_VELOCITY2   = 1 << 3
	PF_VELOCITY3   = 1 << 4
	PF_MODEL       = 1 << 5
	PF_SKINNUM     = 1 << 6
	PF_EFFECTS     = 1 << 7
	PF_WEAPONFRAME = 1 << 8 // only sent for the view player
	PF_DEAD        = 1 << 9
	PF_GIB         = 1 << 10
	// Bits 11..13 carry the player move type (ZQuake extension, PMC_*).
	PF_PMC_SHIFT = 11
	PF_PMC_MASK  = 7
	PF_ONGROUND  = 1 << 14 // ZQuake extension (Z_EXT_PF_ONGROUND)
	PF_SOLID     = 1 << 15 // ZQuake extension (Z_EXT_PF_SOLID)
)

// Player move types in PF_PMC bits.
const (
	PMC_NORMAL           = 0 // normal ground movement
	PMC_NORMAL_JUMP_HELD = 1 // normal, jump still held (no new jump)
	PMC_OLD_SPECTATOR    = 2
	PMC_SPECTATOR        = 3
	PMC_FLY              = 4
	PMC_NONE             = 5
	PMC_LOCK             = 6
	PMC_EXTRA3           = 7
)

// Delta usercmd bits (the byte in front of each command in clc_move and in
// svc_playerinfo's PF_COMMAND). msec is always sent.
const (
	CM_ANGLE1  = 1 << 0
	CM_ANGLE3  = 1 << 1
	CM_FORWARD = 1 << 2
	CM_SIDE    = 1 << 3
	CM_UP      = 1 << 4
	CM_BUTTONS = 1 << 5
	CM_IMPULSE = 1 << 6
	CM_ANGLE2  = 1 << 7
)

// Usercmd button bits.
const (
	BUTTON_ATTACK = 1 << 0
	BUTTON_JUMP   = 1 << 1
	BUTTON_USE    = 1 << 2
)

// Entity update bits (svc_packetentities). The first u16 holds the entity
// number in bits 0..8 and U_ORIGIN1..U_MOREBITS in bits 9..15; with
// U_MOREBITS a byte follows with U_ANGLE1..U_SOLID in bits 0..7.
const (
	U_ORIGIN1  = 1 << 9
	U_ORIGIN2  = 1 << 10
	U_ORIGIN3  = 1 << 11
	U_ANGLE2   = 1 << 12
	U_FRAME    = 1 << 13
	U_REMOVE   = 1 << 14 // remove the entity; nothing else follows the word
	U_MOREBITS = 1 << 15

	U_ANGLE1   = 1 << 0
	U_ANGLE3   = 1 << 1
	U_MODEL    = 1 << 2
	U_COLORMAP = 1 << 3
	U_SKIN     = 1 << 4
	U_EFFECTS  = 1 << 5
	U_SOLID    = 1 << 6 // solid for client-side prediction

	// entityNumberMask selects the entity number in the first word.
	entityNumberMask = 511
)

// svc_sound channel word bits.
const (
	SND_VOLUME      = 1 << 15 // a volume byte follows
	SND_ATTENUATION = 1 << 14 // an attenuation byte (value*64) follows
)

// svc_print levels.
const (
	PRINT_LOW    = 0
	PRINT_MEDIUM = 1
	PRINT_HIGH   = 2
	PRINT_CHAT   = 3
)

// svc_temp_entity types.
const (
	TE_SPIKE          = 0
	TE_SUPERSPIKE     = 1
	TE_GUNSHOT        = 2
	TE_EXPLOSION      = 3
	TE_TAREXPLOSION   = 4
	TE_LIGHTNING1     = 5
	TE_LIGHTNING2     = 6
	TE_WIZSPIKE       = 7
	TE_KNIGHTSPIKE    = 8
	TE_LIGHTNING3     = 9
	TE_LAVASPLASH     = 10
	TE_TELEPORT       = 11
	TE_BLOOD          = 12
	TE_LIGHTNINGBLOOD = 13
)

// Flags of the connectionless "status <flags>" request (mvdsv's STATUS_*,
// what qstat sends: 23 = serverinfo|players|spectators|showteams).
const (
	STATUS_OLDSTYLE              = 0 // serverinfo and players, no team field
	STATUS_SERVERINFO            = 1
	STATUS_PLAYERS               = 2
	STATUS_SPECTATORS            = 4
	STATUS_SPECTATORS_AS_PLAYERS = 8 // spectators get frags "S" and keep ping and name
	STATUS_SHOWTEAMS             = 16
)
