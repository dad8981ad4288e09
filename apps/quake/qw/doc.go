// Package qw is the QuakeWorld protocol 28 wire format, shared by molt's
// Quake server (apps/quake) and the qwbot test clients (tools/qwbot): the
// message buffer encodings, the connectionless packets (status, ping,
// getchallenge, connect and their replies), userinfo/serverinfo strings,
// the netchan, and the svc_*/clc_* messages a server and a bot exchange.
// Everything is host-testable: no sockets, no clocks, no globals.
//
// The layouts follow id's QuakeWorld 2.3x sources as mvdsv 0.35 and
// ezquake 3.6.1 still implement them (protocol.h for the numbers,
// net_chan.c for the netchan, cl_parse.c and sv_ents.c for the message
// layouts), checked against what those programs put on the wire
// (docs/quake.md has the tables). No protocol extension (FTE, MVD) is
// negotiated: they change the layout of other messages.
//
// # Decoding
//
// Reader never panics: a read past the end records ErrTruncated, a
// malformed value ErrMalformed, every later read returns zero values, and
// the caller checks Err once (Quake's msg_badread). ParseServerMessages and
// ParseClientMessages walk a payload and stop at the first unknown or
// truncated message with a *ParseError; a payload has no length fields, so
// nothing after such a message can be read. Decoders accept what id's
// readers accept (for example usercmd bits for unchanged fields), and
// every value they return re-encodes to a payload that decodes to the same
// value; where the wire form is canonical the bytes are identical. The
// fuzz targets check both.
//
// # Netchan
//
// Channel is either end of a connection: Transmit builds the next packet,
// Process takes a received one. ChannelState is its plain saved form, with
// a versioned binary encoding (netchan_state.go), so that a kernel update
// can carry every client's sequences, reliable bits and unacknowledged
// reliable data and the clients never notice.
//
// Not here: the clc_move checksum (COM_BlockSequenceCRCByte), the map
// checksum (MD4 of the BSP lumps), player movement, and anything with a
// socket.
package qw
