package kv

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/crc64"
	"io"
)

// Snapshot format, versions 1 and 2. All integers are little-endian.
//
//	offset  size  field
//	0       8     magic "MOLTKV\x00\n"
//	8       4     format version (1 or 2); separate from molt's release version
//	12      4     header flags, must be 0 (reserved)
//	16      8     body length in bytes (B)
//	24      B     body:
//	                saved_at  int64   store clock at Save, Unix seconds
//	                last_cas  uint64  last CAS unique handed out
//	                flush_at  int64   pending delayed flush_all, Unix seconds; 0 = none
//	                count     uint64  number of items
//	                count items, least recently used first:
//	                  key_len   uint16  1..250
//	                  flags     uint32
//	                  exptime   int64   absolute Unix seconds; 0 = never
//	                  cas       uint64  1..last_cas
//	                  atime     int64   v2 only: last access, Unix seconds, >= 0
//	                  value_len uint32  at most 1 GiB
//	                  key       key_len bytes
//	                  value     value_len bytes
//	24+B    8     CRC-64/ECMA of bytes [0, 24+B)
//
// Version 2 adds atime, the item's last access (Item.LastAccess). Version 1
// is still read (its items get atime = saved_at, the best bound known) and
// can still be written (dropping atime), for updates to and rollbacks onto
// images that read only version 1.
//
// A snapshot is self-delimiting: the decoder reads exactly 32+B bytes, so
// it can be embedded in a larger stream (a self-update handoff image).
// docs/kv.md has the same table and the compatibility rules.
const (
	snapshotMagic = "MOLTKV\x00\n"
	// CurrentSchema is the newest snapshot version this package reads and
	// writes; OldestSchema the oldest it reads.
	CurrentSchema = 2
	OldestSchema  = 1
	headerLen     = 24
	bodyFixedLen  = 32
	itemFixedLen  = 2 + 4 + 8 + 8 + 4 // version 1
	itemFixedLen2 = itemFixedLen + 8  // version 2: + atime
	// maxSnapshotValue caps value_len; maxSnapshotBody caps B. They bound
	// what a corrupt header can make the decoder attempt.
	maxSnapshotValue = 1 << 30
	maxSnapshotBody  = 1 << 40
)

// SchemaVersion returns the snapshot version this image writes, and the
// newest it claims to read as a task (TaskSpec): 2, or 1 in an image built
// with the kv_schema1 build tag (a "v1 image" for update and rollback
// tests against a v2 one: molt build, or image.BuildOptions with
// GOFLAGS=-tags=kv_schema1). A build tag rather than a variable, because
// the image's task manifest (ManifestLine) is a constant that the kernel
// it is pushed to reads from the file.
func SchemaVersion() uint32 { return writeSchema }

func itemLen(version uint32) int {
	if version >= 2 {
		return itemFixedLen2
	}
	return itemFixedLen
}

// Snapshot decoding errors. Errors returned by DecodeState and Restore wrap
// one of these (or an I/O error from the reader).
var (
	ErrBadMagic = errors.New("kv: snapshot: bad magic")
	ErrVersion  = errors.New("kv: snapshot: unsupported format version")
	ErrChecksum = errors.New("kv: snapshot: checksum mismatch")
	ErrCorrupt  = errors.New("kv: snapshot: corrupt")
)

var crcTable = crc64.MakeTable(crc64.ECMA)

// State is the saved form of a Store: plain data, no locks or list links.
// Save writes it, Restore rebuilds a live Store from it plus the store's
// own Config (limits and clock are resources of the new kernel, not state).
//
// Not carried: statistics counters (the kv task state carries them in its
// stats block, stats_state.go), connection state and the verbosity level.
// Expired items are not saved.
type State struct {
	// Version is the snapshot version the state was decoded from; 0 for
	// a State taken from a live store. WriteTo writes it back in that
	// version (or SchemaVersion if 0).
	Version uint32
	SavedAt int64  // store clock at save, Unix seconds
	LastCAS uint64 // last CAS unique handed out
	FlushAt int64  // pending delayed flush, Unix seconds; 0 = none
	Items   []ItemState
}

// ItemState is one saved item. Items are kept least recently used first.
type ItemState struct {
	Key     string
	Value   []byte
	Flags   uint32
	Exptime int64 // absolute Unix seconds; 0 = never
	CAS     uint64
	// LastAccess is the last store, read or touch, Unix seconds. Version
	// 1 does not carry it: decoding sets it to SavedAt.
	LastAccess int64
}

// State returns the store's contents as plain data. Values are shared with
// the store (they are immutable) rather than copied.
func (s *Store) State() *State {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.beginLocked()
	st := &State{SavedAt: now, LastCAS: s.lastCAS, FlushAt: s.flushAt, Items: make([]ItemState, 0, len(s.items))}
	for it := s.head.prev; it != &s.head; it = it.prev {
		if it.expiredAt(now) {
			continue
		}
		st.Items = append(st.Items, ItemState{Key: it.key, Value: it.value, Flags: it.flags, Exptime: it.exptime, CAS: it.cas, LastAccess: it.atime})
	}
	return st
}

// Save writes a snapshot of the store to w, in SchemaVersion. The store's
// lock is held only while the item list is copied, not while writing.
func (s *Store) Save(w io.Writer) error {
	_, err := s.State().WriteVersion(w, SchemaVersion())
	return err
}

// SaveVersion is Save in snapshot version v (OldestSchema..CurrentSchema).
func (s *Store) SaveVersion(w io.Writer, v uint32) error {
	_, err := s.State().WriteVersion(w, v)
	return err
}

// Restore replaces the store's contents with the snapshot read from r. The
// snapshot is decoded and verified in full first: on any error the store
// is unchanged. Then, in the store's own clock and limits, items that have
// expired are dropped, values larger than MaxItemSize are dropped, and if
// the items exceed MaxBytes the least recently used are evicted (counted in
// Stats.Evictions). CAS uniques are kept, and new ones continue above
// both the snapshot's and the store's last one.
func (s *Store) Restore(r io.Reader) error {
	st, err := DecodeState(r)
	if err != nil {
		return err
	}
	s.RestoreState(st)
	return nil
}

// RestoreState replaces the store's contents with st, as Restore does.
// st must be valid (as DecodeState returns); its values become owned by
// the store. The counters are left as they are.
func (s *Store) RestoreState(st *State) { s.restoreState(st, nil) }

// restoreState is RestoreState that, if counters is not nil, also replaces
// the operation counters with it (a task restore, from the stats block of
// the task state; its CurrItems, Bytes and LimitBytes are ignored). Both
// happen under one hold of the lock, so no reader sees the items without
// their counters. The counters are set first: items the restore itself
// drops for the new limits count as evictions on top of the carried ones.
func (s *Store) restoreState(st *State, counters *Stats) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if counters != nil {
		c := *counters
		c.CurrItems, c.Bytes, c.LimitBytes = s.stats.CurrItems, 0, s.maxBytes
		s.stats = c
	}
	s.clearLocked()
	s.flushAt = st.FlushAt
	s.lastCAS = max(s.lastCAS, st.LastCAS)
	now := s.beginLocked() // applies FlushAt if it is due
	if st.FlushAt != 0 && s.flushAt == 0 {
		return // the pending flush came due while the state was saved
	}
	for i := range st.Items {
		is := &st.Items[i]
		if is.Exptime != 0 && is.Exptime <= now {
			continue
		}
		if len(is.Value) > s.maxItemSize || len(is.Key) == 0 || len(is.Key) > MaxKeyLen {
			s.stats.Evictions++
			continue
		}
		if old := s.items[is.Key]; old != nil {
			s.unlinkLocked(old)
		}
		it := &item{key: is.Key, value: is.Value, flags: is.Flags, exptime: is.Exptime, cas: is.CAS, atime: is.LastAccess}
		if !s.makeRoomLocked(it.cost(), now) {
			continue
		}
		s.linkLocked(it)
	}
}

// encodedLen is the body length B of st in version v.
func (st *State) encodedLen(v uint32) uint64 {
	n := uint64(bodyFixedLen)
	for i := range st.Items {
		n += uint64(itemLen(v)) + uint64(len(st.Items[i].Key)) + uint64(len(st.Items[i].Value))
	}
	return n
}

// WriteTo writes st in the snapshot format, in st.Version (SchemaVersion if
// 0); see WriteVersion.
func (st *State) WriteTo(w io.Writer) (int64, error) {
	v := st.Version
	if v == 0 {
		v = SchemaVersion()
	}
	return st.WriteVersion(w, v)
}

// WriteVersion writes st in snapshot version v. Version 1 drops
// LastAccess. It fails without writing if v is unknown or an item cannot
// be represented (key or value too long, negative LastAccess).
func (st *State) WriteVersion(w io.Writer, v uint32) (int64, error) {
	if v < OldestSchema || v > CurrentSchema {
		return 0, fmt.Errorf("%w: cannot write version %d (this kernel writes %d..%d)", ErrVersion, v, OldestSchema, CurrentSchema)
	}
	for i := range st.Items {
		it := &st.Items[i]
		if len(it.Key) == 0 || len(it.Key) > MaxKeyLen || len(it.Value) > maxSnapshotValue || v >= 2 && it.LastAccess < 0 {
			return 0, fmt.Errorf("%w: item %d: key length %d, value length %d, last access %d out of range", ErrCorrupt, i, len(it.Key), len(it.Value), it.LastAccess)
		}
	}
	h := crc64.New(crcTable)
	cw := &countWriter{w: io.MultiWriter(w, h)}
	bw := bufio.NewWriterSize(cw, 64<<10)
	var b [itemFixedLen2]byte
	copy(b[:8], snapshotMagic)
	binary.LittleEndian.PutUint32(b[8:], v)
	binary.LittleEndian.PutUint32(b[12:], 0)
	binary.LittleEndian.PutUint64(b[16:], st.encodedLen(v))
	bw.Write(b[:headerLen])
	binary.LittleEndian.PutUint64(b[0:], uint64(st.SavedAt))
	binary.LittleEndian.PutUint64(b[8:], st.LastCAS)
	binary.LittleEndian.PutUint64(b[16:], uint64(st.FlushAt))
	bw.Write(b[:24])
	binary.LittleEndian.PutUint64(b[:8], uint64(len(st.Items)))
	bw.Write(b[:8])
	for i := range st.Items {
		it := &st.Items[i]
		binary.LittleEndian.PutUint16(b[0:], uint16(len(it.Key)))
		binary.LittleEndian.PutUint32(b[2:], it.Flags)
		binary.LittleEndian.PutUint64(b[6:], uint64(it.Exptime))
		binary.LittleEndian.PutUint64(b[14:], it.CAS)
		vl := 22
		if v >= 2 {
			binary.LittleEndian.PutUint64(b[22:], uint64(it.LastAccess))
			vl = 30
		}
		binary.LittleEndian.PutUint32(b[vl:], uint32(len(it.Value)))
		bw.Write(b[:itemLen(v)])
		bw.WriteString(it.Key)
		bw.Write(it.Value)
	}
	if err := bw.Flush(); err != nil {
		return cw.n, err
	}
	binary.LittleEndian.PutUint64(b[:8], h.Sum64())
	n, err := w.Write(b[:8])
	return cw.n + int64(n), err
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// decoder reads a snapshot body, hashing everything it reads.
type decoder struct {
	r    *bufio.Reader
	h    hash.Hash64
	left uint64 // body bytes not yet read
	buf  [itemFixedLen2]byte
	err  error
}

func (d *decoder) read(p []byte) []byte {
	if d.err != nil {
		return nil
	}
	if uint64(len(p)) > d.left {
		d.err = fmt.Errorf("%w: body shorter than its contents", ErrCorrupt)
		return nil
	}
	if _, err := io.ReadFull(d.r, p); err != nil {
		d.err = fmt.Errorf("kv: snapshot: reading body: %w", noEOF(err))
		return nil
	}
	d.h.Write(p)
	d.left -= uint64(len(p))
	return p
}

// bytes reads n bytes into a new slice, allocating as data arrives rather
// than trusting n up front.
func (d *decoder) bytes(n int) []byte {
	const chunk = 64 << 10
	if n <= chunk {
		return d.read(make([]byte, n))
	}
	out := make([]byte, 0, chunk)
	for len(out) < n && d.err == nil {
		m := min(n-len(out), chunk)
		out = append(out, make([]byte, m)...)
		d.read(out[len(out)-m:])
	}
	return out
}

func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// DecodeState reads one snapshot from r and verifies it: magic, version,
// structure and checksum. It reads exactly the snapshot's bytes from r.
func DecodeState(r io.Reader) (*State, error) {
	var hdr [headerLen]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, fmt.Errorf("kv: snapshot: reading header: %w", noEOF(err))
	}
	if string(hdr[:8]) != snapshotMagic {
		return nil, ErrBadMagic
	}
	version := binary.LittleEndian.Uint32(hdr[8:])
	if version < OldestSchema || version > CurrentSchema {
		return nil, fmt.Errorf("%w: %d (this kernel reads %d..%d)", ErrVersion, version, OldestSchema, CurrentSchema)
	}
	fixed := itemLen(version)
	if f := binary.LittleEndian.Uint32(hdr[12:]); f != 0 {
		return nil, fmt.Errorf("%w: reserved header flags %#x", ErrCorrupt, f)
	}
	bodyLen := binary.LittleEndian.Uint64(hdr[16:])
	if bodyLen < bodyFixedLen || bodyLen > maxSnapshotBody {
		return nil, fmt.Errorf("%w: body length %d", ErrCorrupt, bodyLen)
	}
	d := &decoder{
		// The limit keeps bufio from reading past the snapshot.
		r:    bufio.NewReaderSize(io.LimitReader(r, int64(bodyLen)+8), 64<<10),
		h:    crc64.New(crcTable),
		left: bodyLen,
	}
	d.h.Write(hdr[:])
	st := &State{Version: version}
	if b := d.read(d.buf[:24]); b != nil {
		st.SavedAt = int64(binary.LittleEndian.Uint64(b[0:]))
		st.LastCAS = binary.LittleEndian.Uint64(b[8:])
		st.FlushAt = int64(binary.LittleEndian.Uint64(b[16:]))
	}
	var count uint64
	if b := d.read(d.buf[:8]); b != nil {
		count = binary.LittleEndian.Uint64(b)
	}
	if d.err != nil {
		return nil, d.err
	}
	if st.FlushAt < 0 || count > (bodyLen-bodyFixedLen)/uint64(fixed) {
		return nil, fmt.Errorf("%w: flush_at %d, count %d", ErrCorrupt, st.FlushAt, count)
	}
	seen := make(map[string]struct{}, min(count, 1<<16))
	st.Items = make([]ItemState, 0, min(count, 1<<16))
	for i := uint64(0); i < count && d.err == nil; i++ {
		b := d.read(d.buf[:fixed])
		if b == nil {
			break
		}
		keyLen := int(binary.LittleEndian.Uint16(b[0:]))
		it := ItemState{
			Flags:   binary.LittleEndian.Uint32(b[2:]),
			Exptime: int64(binary.LittleEndian.Uint64(b[6:])),
			CAS:     binary.LittleEndian.Uint64(b[14:]),
		}
		vl := 22
		if version >= 2 {
			it.LastAccess = int64(binary.LittleEndian.Uint64(b[22:]))
			vl = 30
		} else {
			// The v1→v2 migration: v1 never recorded accesses; saved_at
			// is the latest time any of them can have happened.
			it.LastAccess = max(st.SavedAt, 0)
		}
		valueLen := int(binary.LittleEndian.Uint32(b[vl:]))
		if keyLen == 0 || keyLen > MaxKeyLen || valueLen > maxSnapshotValue ||
			it.Exptime < 0 || it.CAS == 0 || it.CAS > st.LastCAS || it.LastAccess < 0 {
			return nil, fmt.Errorf("%w: item %d: key length %d, value length %d, exptime %d, cas %d, last access %d",
				ErrCorrupt, i, keyLen, valueLen, it.Exptime, it.CAS, it.LastAccess)
		}
		var kb [MaxKeyLen]byte
		key := d.read(kb[:keyLen])
		if key == nil {
			break
		}
		if !validKey(key) {
			return nil, fmt.Errorf("%w: item %d: invalid key %q", ErrCorrupt, i, key)
		}
		if _, dup := seen[string(key)]; dup {
			return nil, fmt.Errorf("%w: item %d: duplicate key %q", ErrCorrupt, i, key)
		}
		it.Key = string(key)
		seen[it.Key] = struct{}{}
		it.Value = d.bytes(valueLen)
		st.Items = append(st.Items, it)
	}
	if d.err != nil {
		return nil, d.err
	}
	if d.left != 0 {
		return nil, fmt.Errorf("%w: %d bytes after the last item", ErrCorrupt, d.left)
	}
	var sum [8]byte
	if _, err := io.ReadFull(d.r, sum[:]); err != nil {
		return nil, fmt.Errorf("kv: snapshot: reading checksum: %w", noEOF(err))
	}
	if got, want := binary.LittleEndian.Uint64(sum[:]), d.h.Sum64(); got != want {
		return nil, fmt.Errorf("%w: stored %#016x, computed %#016x", ErrChecksum, got, want)
	}
	return st, nil
}

func crcOf(b []byte) uint64 { return crc64.Checksum(b, crcTable) }
