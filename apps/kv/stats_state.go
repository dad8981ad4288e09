package kv

import (
	"encoding/binary"
	"fmt"
	"math"
	"time"
)

// The stats block of the kv task state: the counters `stats` reports, so
// that hit rates, traffic totals and uptime continue across an update
// instead of restarting at zero. It follows the connection block, in both
// task-state schemas (docs/tasks.md §5):
//
//	0x00  8  magic "MOLTKVS\n"
//	0x08  2  block version, 1
//	0x0a  2  reserved, zero
//	0x0c  4  counter count N, at most maxStatsCounters
//	0x10  8N counters, little-endian uint64, in the order of statsSlots
//	nothing follows the last counter
//
// The block is optional: a state written before it existed ends after the
// connection block, and restores with the counters at zero. N is what lets
// the block grow without a new version: a writer appends counters, a
// reader takes the ones it knows, ignores the rest, and leaves the ones
// the writer did not have at zero. The version changes only for what
// appending cannot express (a slot's meaning, the header); a reader
// refuses versions it does not know. Like the connection block it has no
// checksum: the handoff region's SHA-256 covers it.
//
// Not carried: curr_connections (the connections the new kernel serves
// are counted as it adopts them), curr_items, bytes, limit_maxbytes
// (derived from the items and the new kernel's limits).

const (
	statsMagic     = "MOLTKVS\n"
	statsVersion   = 1
	statsHeaderLen = 16
	// maxStatsCounters bounds N: far more than memcached has, small
	// enough that a wrong count is caught before anything is read.
	maxStatsCounters = 1024
)

// StatsState is the stats block of a task state.
type StatsState struct {
	// Store holds the store's operation counters. CurrItems, Bytes and
	// LimitBytes are not carried (zero here): they describe the items,
	// which the snapshot carries, and the new store's limits.
	Store Stats
	// The server's counters (total_connections, rejected_connections,
	// bytes_read, bytes_written).
	TotalConns, RejectedConns, BytesRead, BytesWritten uint64
	// StartedAt is when the server started, wall clock, Unix
	// nanoseconds, as of the save: the save's wall clock minus the
	// monotonic uptime, so a wall-clock step during the old kernel's
	// life does not skew it. 0 = unknown (uptime restarts).
	StartedAt uint64
	// UptimeNs is the server's monotonic uptime at the save. It is a
	// floor for the uptime after the restore, in case the wall clock
	// went back across the update.
	UptimeNs uint64
}

// statsSlots returns the block's counters in their order in the block
// (comments: offset from the first counter, 0x10 in the block).
// The order is the format: counters are appended, never inserted,
// reordered or removed (one that goes out of use is written as zero), so
// that readers of every age agree on the slots they know.
func (s *StatsState) statsSlots() []*uint64 {
	st := &s.Store
	return []*uint64{
		&st.TotalItems,   // +0x00 total_items
		&st.Evictions,    // +0x08 evictions
		&st.Reclaimed,    // +0x10 reclaimed
		&st.CmdGet,       // +0x18 cmd_get
		&st.CmdSet,       // +0x20 cmd_set
		&st.CmdFlush,     // +0x28 cmd_flush
		&st.CmdTouch,     // +0x30 cmd_touch
		&st.GetHits,      // +0x38 get_hits
		&st.GetMisses,    // +0x40 get_misses
		&st.GetExpired,   // +0x48 get_expired
		&st.DeleteHits,   // +0x50 delete_hits
		&st.DeleteMiss,   // +0x58 delete_misses
		&st.IncrHits,     // +0x60 incr_hits
		&st.IncrMisses,   // +0x68 incr_misses
		&st.DecrHits,     // +0x70 decr_hits
		&st.DecrMisses,   // +0x78 decr_misses
		&st.CasHits,      // +0x80 cas_hits
		&st.CasMisses,    // +0x88 cas_misses
		&st.CasBadval,    // +0x90 cas_badval
		&st.TouchHits,    // +0x98 touch_hits
		&st.TouchMisses,  // +0xa0 touch_misses
		&s.TotalConns,    // +0xa8 total_connections
		&s.RejectedConns, // +0xb0 rejected_connections
		&s.BytesRead,     // +0xb8 bytes_read
		&s.BytesWritten,  // +0xc0 bytes_written
		&s.StartedAt,     // +0xc8 server start, wall clock, Unix ns
		&s.UptimeNs,      // +0xd0 uptime at the save, ns
	}
}

// statsCounters is the number of counters this version writes.
var statsCounters = len((&StatsState{}).statsSlots())

// Append appends the stats block to dst.
func (s *StatsState) Append(dst []byte) []byte {
	le := binary.LittleEndian
	slots := s.statsSlots()
	dst = append(dst, statsMagic...)
	dst = le.AppendUint16(dst, statsVersion)
	dst = le.AppendUint16(dst, 0)
	dst = le.AppendUint32(dst, uint32(len(slots)))
	for _, p := range slots {
		dst = le.AppendUint64(dst, *p)
	}
	return dst
}

// DecodeStatsState parses a stats block; p must hold exactly one. Errors
// wrap ErrCorrupt. Counters past the ones this version knows are ignored;
// known ones the block lacks are zero.
func DecodeStatsState(p []byte) (*StatsState, error) {
	le := binary.LittleEndian
	if len(p) < statsHeaderLen {
		return nil, fmt.Errorf("%w: stats block of %d bytes, its header needs %d", ErrCorrupt, len(p), statsHeaderLen)
	}
	if string(p[:8]) != statsMagic {
		return nil, fmt.Errorf("%w: stats block magic %q, want %q", ErrCorrupt, p[:8], statsMagic)
	}
	if v := le.Uint16(p[8:]); v != statsVersion {
		return nil, fmt.Errorf("%w: stats block version %d (this kernel reads %d)", ErrCorrupt, v, statsVersion)
	}
	if v := le.Uint16(p[10:]); v != 0 {
		return nil, fmt.Errorf("%w: stats block reserved field %#x", ErrCorrupt, v)
	}
	n := uint64(le.Uint32(p[12:]))
	if n > maxStatsCounters {
		return nil, fmt.Errorf("%w: stats block of %d counters, at most %d", ErrCorrupt, n, maxStatsCounters)
	}
	switch body := uint64(len(p) - statsHeaderLen); {
	case body < 8*n:
		return nil, fmt.Errorf("%w: stats block truncated: %d counters need %d bytes, %d left", ErrCorrupt, n, 8*n, body)
	case body > 8*n:
		return nil, fmt.Errorf("%w: %d bytes after the stats block's %d counters", ErrCorrupt, body-8*n, n)
	}
	s := &StatsState{}
	for i, q := range s.statsSlots() {
		if uint64(i) == n {
			break
		}
		*q = le.Uint64(p[statsHeaderLen+8*i:])
	}
	// The times become a time.Time and a time.Duration, both int64.
	if s.StartedAt > math.MaxInt64 || s.UptimeNs > math.MaxInt64 {
		return nil, fmt.Errorf("%w: stats block start %d ns, uptime %d ns out of range", ErrCorrupt, s.StartedAt, s.UptimeNs)
	}
	return s, nil
}

// statsState returns the server's and its store's counters as the stats
// block carries them. The task calls it while the server is quiesced, so
// that they describe the same instant as the store snapshot.
func (s *Server) statsState() *StatsState {
	now := time.Now()
	up := max(now.Sub(s.startTime()), 0) // monotonic: start was read from time.Now
	ss := &StatsState{
		Store:         s.store.Stats(),
		TotalConns:    s.totalConns.Load(),
		RejectedConns: s.rejectedConns.Load(),
		BytesRead:     s.bytesRead.Load(),
		BytesWritten:  s.bytesWritten.Load(),
		UptimeNs:      uint64(up),
	}
	if w := now.Add(-up).UnixNano(); w > 0 {
		ss.StartedAt = uint64(w)
	}
	ss.Store.CurrItems, ss.Store.Bytes, ss.Store.LimitBytes = 0, 0, 0
	return ss
}

// restoreCounters sets the server's counters and start time from a
// restored stats block (the store's are set by Store.restoreState).
// curr_connections is not touched: the connections handed over are
// counted there as Adopt serves them, and not in total_connections, which
// the old kernel already counted them in when it accepted them.
func (s *Server) restoreCounters(ss *StatsState, now time.Time) {
	s.totalConns.Store(ss.TotalConns)
	s.rejectedConns.Store(ss.RejectedConns)
	s.bytesRead.Store(ss.BytesRead)
	s.bytesWritten.Store(ss.BytesWritten)
	if ss.StartedAt == 0 && ss.UptimeNs == 0 {
		return // an unknown start: uptime counts from this kernel's
	}
	up := time.Duration(ss.UptimeNs)
	if ss.StartedAt != 0 {
		// The wall clock continues across the update, so this includes
		// the time the update took.
		up = max(up, now.Sub(time.Unix(0, int64(ss.StartedAt))))
	}
	// From now on, with now's monotonic reading: uptime no longer
	// depends on the wall clock.
	start := now.Add(-up)
	s.start.Store(&start)
}
