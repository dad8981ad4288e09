package kv

import (
	"errors"
	"sync"
	"time"
)

// Limits of the memcached text protocol that the Store enforces too.
const (
	// MaxKeyLen is the longest key in bytes (memcached's KEY_MAX_LENGTH).
	MaxKeyLen = 250
	// maxRelativeExptime is the largest exptime taken as an offset from
	// now (30 days); larger values are absolute Unix times.
	maxRelativeExptime = 60 * 60 * 24 * 30
	// itemOverhead is the fixed cost charged per item on top of its key
	// and value when accounting bytes against Config.MaxBytes: the item
	// struct, the map entry and the list links, rounded.
	itemOverhead = 64
)

// Defaults used where a Config field is zero.
const (
	DefaultMaxBytes    = 64 << 20
	DefaultMaxItemSize = 1 << 20
)

// Config configures a Store. Zero fields take the defaults above.
type Config struct {
	// MaxBytes bounds the memory charged to items (key + value +
	// a fixed per-item overhead). Storing past it evicts the least
	// recently used items. Default 64 MiB.
	MaxBytes int64
	// MaxItemSize is the largest value, in bytes, that can be stored
	// (memcached's -I). Larger values are refused with ErrTooLarge.
	// Default 1 MiB.
	MaxItemSize int
	// Now is the clock; expiry times are whole Unix seconds of it.
	// Default time.Now. Tests inject a fake.
	Now func() time.Time
}

// ErrConfig reports a Config that cannot work (for example MaxBytes too small
// to hold one item of MaxItemSize).
var ErrConfig = errors.New("kv: invalid config")

// Mode selects the semantics of Store.Store, after the storage commands of
// the memcached protocol.
type Mode uint8

// The storage modes.
const (
	ModeSet     Mode = iota // store unconditionally
	ModeAdd                 // store only if the key holds no live item
	ModeReplace             // store only if the key holds a live item
	ModeAppend              // add data after the existing value; keeps flags and exptime
	ModePrepend             // add data before the existing value; keeps flags and exptime
	ModeCAS                 // store only if the item's CAS unique is still the given one
)

// Result is the outcome of a Store operation. Its String is the protocol's
// reply line for the outcomes that have one.
type Result uint8

// The results.
const (
	Stored     Result = iota // the item was stored
	NotStored                // add/replace/append/prepend condition not met
	Exists                   // cas: the item was modified since it was fetched
	NotFound                 // the key holds no live item
	Deleted                  // delete succeeded
	Touched                  // touch succeeded
	TooLarge                 // the value is larger than MaxItemSize
	NoMemory                 // the item cannot fit in MaxBytes even after evicting everything
	NonNumeric               // incr/decr on a value that is not a decimal uint64
)

var resultLines = [...]string{
	Stored:     "STORED",
	NotStored:  "NOT_STORED",
	Exists:     "EXISTS",
	NotFound:   "NOT_FOUND",
	Deleted:    "DELETED",
	Touched:    "TOUCHED",
	TooLarge:   "SERVER_ERROR object too large for cache",
	NoMemory:   "SERVER_ERROR out of memory storing object",
	NonNumeric: "CLIENT_ERROR cannot increment or decrement non-numeric value",
}

func (r Result) String() string {
	if int(r) < len(resultLines) {
		return resultLines[r]
	}
	return "SERVER_ERROR unknown result"
}

// Item is a copy of a stored item as returned by Get. Value is shared with
// the store and must not be modified: stored values are immutable (every
// update installs a new slice), which is what lets readers use them after
// the store's lock is released.
type Item struct {
	Key     string
	Value   []byte
	Flags   uint32
	Exptime int64 // absolute Unix seconds; 0 means never
	CAS     uint64
	// LastAccess is when the item was last stored, read or touched, in
	// Unix seconds of the store's clock, before this access. It is the
	// age memcached reports per item (the meta protocol's "la" flag,
	// "stats items" age) and what idle-item policies look at; snapshot
	// schema v2 carries it across an update.
	LastAccess int64
}

// item is a live entry: a node of the LRU list, owned by Store.mu.
type item struct {
	key     string
	value   []byte // immutable once stored
	flags   uint32
	exptime int64 // absolute Unix seconds, 0 = never
	cas     uint64
	atime   int64 // last store, read or touch, Unix seconds
	// LRU links: prev is towards the most recently used end.
	prev, next *item
}

func (it *item) cost() int64 { return itemOverhead + int64(len(it.key)) + int64(len(it.value)) }

func (it *item) expiredAt(now int64) bool { return it.exptime != 0 && it.exptime <= now }

// Stats are the Store's counters, named after memcached's stats.
type Stats struct {
	CurrItems  uint64 // live items (curr_items)
	TotalItems uint64 // items ever stored (total_items)
	Bytes      int64  // bytes charged to live items (bytes)
	LimitBytes int64  // MaxBytes (limit_maxbytes)
	Evictions  uint64 // unexpired items removed to make room (evictions)
	Reclaimed  uint64 // expired items removed to make room or on access (reclaimed)

	CmdGet      uint64 // keys looked up by get/gets/gat/gats (cmd_get)
	CmdSet      uint64 // storage commands (cmd_set)
	CmdFlush    uint64 // flush_all commands (cmd_flush)
	CmdTouch    uint64 // touch and gat keys (cmd_touch)
	GetHits     uint64
	GetMisses   uint64
	GetExpired  uint64 // misses because the item had expired
	DeleteHits  uint64
	DeleteMiss  uint64
	IncrHits    uint64
	IncrMisses  uint64
	DecrHits    uint64
	DecrMisses  uint64
	CasHits     uint64
	CasMisses   uint64
	CasBadval   uint64
	TouchHits   uint64
	TouchMisses uint64
}

// Store is an in-memory key-value store with memcached semantics: items
// carry flags, an expiry time and a CAS unique; memory is bounded by
// MaxBytes with least-recently-used eviction. It is safe for concurrent use.
//
// Synchronization: one mutex, mu, guards all mutable state. It is a leaf
// lock: no other lock is taken while it is held, and it is never held
// across I/O (Save copies what it needs and encodes after unlocking).
type Store struct {
	// Immutable after NewStore.
	maxBytes    int64
	maxItemSize int
	now         func() time.Time

	mu sync.Mutex
	// +checklocks:mu
	items map[string]*item
	// head is a sentinel: head.next is the most recently used item,
	// head.prev the least recently used.
	// +checklocks:mu
	head item
	// +checklocks:mu
	bytes int64
	// +checklocks:mu
	lastCAS uint64
	// flushAt is the Unix second at which a delayed flush_all takes
	// effect; 0 when none is pending.
	// +checklocks:mu
	flushAt int64
	// +checklocks:mu
	stats Stats
}

// NewStore returns an empty store.
func NewStore(cfg Config) (*Store, error) {
	if cfg.MaxBytes == 0 {
		cfg.MaxBytes = DefaultMaxBytes
	}
	if cfg.MaxItemSize == 0 {
		cfg.MaxItemSize = DefaultMaxItemSize
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.MaxItemSize < 0 || cfg.MaxBytes < int64(cfg.MaxItemSize)+MaxKeyLen+itemOverhead {
		return nil, ErrConfig
	}
	s := &Store{
		maxBytes:    cfg.MaxBytes,
		maxItemSize: cfg.MaxItemSize,
		now:         cfg.Now,
		items:       make(map[string]*item),
	}
	s.head.prev, s.head.next = &s.head, &s.head
	s.stats.LimitBytes = cfg.MaxBytes
	return s, nil
}

// MaxItemSize reports the largest value the store accepts.
func (s *Store) MaxItemSize() int { return s.maxItemSize }

// Now reports the store's clock in Unix seconds.
func (s *Store) Now() int64 { return s.now().Unix() }

// absTime converts a protocol exptime (0 = never, negative = already
// expired, up to 30 days = relative seconds, else absolute Unix time) to
// absolute Unix seconds, 0 meaning never. An already-expired time is
// returned as a value <= now.
func absTime(exptime, now int64) int64 {
	switch {
	case exptime == 0:
		return 0
	case exptime < 0:
		return now - 1
	case exptime <= maxRelativeExptime:
		return now + exptime
	default:
		return exptime
	}
}

// beginLocked starts an operation: it reads the clock and applies a due
// delayed flush.
//
// Preconditions:
//   - s.mu is held.
//
// +checklocks:s.mu
func (s *Store) beginLocked() int64 {
	now := s.now().Unix()
	if s.flushAt != 0 && now >= s.flushAt {
		s.flushAt = 0
		s.clearLocked()
	}
	return now
}

// clearLocked drops every item.
//
// Preconditions:
//   - s.mu is held.
//
// +checklocks:s.mu
func (s *Store) clearLocked() {
	clear(s.items)
	s.head.prev, s.head.next = &s.head, &s.head
	s.bytes = 0
	s.stats.CurrItems = 0
}

// linkLocked inserts it at the most recently used end.
//
// Preconditions:
//   - s.mu is held; it is not linked.
//
// +checklocks:s.mu
func (s *Store) linkLocked(it *item) {
	it.prev = &s.head
	it.next = s.head.next
	s.head.next.prev = it
	s.head.next = it
	s.items[it.key] = it
	s.bytes += it.cost()
	s.stats.CurrItems++
}

// unlinkLocked removes it from the list and the map.
//
// Preconditions:
//   - s.mu is held; it is linked.
//
// +checklocks:s.mu
func (s *Store) unlinkLocked(it *item) {
	it.prev.next = it.next
	it.next.prev = it.prev
	it.prev, it.next = nil, nil
	delete(s.items, it.key)
	s.bytes -= it.cost()
	s.stats.CurrItems--
}

// bumpLocked marks it most recently used, accessed at now.
//
// Preconditions:
//   - s.mu is held; it is linked.
//
// +checklocks:s.mu
func (s *Store) bumpLocked(it *item, now int64) {
	it.atime = now
	if s.head.next == it {
		return
	}
	it.prev.next = it.next
	it.next.prev = it.prev
	it.prev = &s.head
	it.next = s.head.next
	s.head.next.prev = it
	s.head.next = it
}

// lookupLocked returns the live item for key, removing it if it expired.
//
// Preconditions:
//   - s.mu is held.
//
// +checklocks:s.mu
func (s *Store) lookupLocked(key []byte, now int64) (it *item, expired bool) {
	it = s.items[string(key)]
	if it == nil {
		return nil, false
	}
	if it.expiredAt(now) {
		s.unlinkLocked(it)
		s.stats.Reclaimed++
		return nil, true
	}
	return it, false
}

// makeRoomLocked evicts least recently used items until need more bytes
// fit under MaxBytes. It reports whether they fit.
//
// Preconditions:
//   - s.mu is held.
//
// +checklocks:s.mu
func (s *Store) makeRoomLocked(need int64, now int64) bool {
	for s.bytes+need > s.maxBytes {
		victim := s.head.prev
		if victim == &s.head {
			return false
		}
		if victim.expiredAt(now) {
			s.stats.Reclaimed++
		} else {
			s.stats.Evictions++
		}
		s.unlinkLocked(victim)
	}
	return true
}

// installLocked stores value under key with the given attributes, reusing
// old (the key's current live item, or nil). exptime is absolute.
//
// Preconditions:
//   - s.mu is held; len(value) <= s.maxItemSize.
//
// +checklocks:s.mu
func (s *Store) installLocked(old *item, key []byte, value []byte, flags uint32, exptime, now int64) Result {
	it := old
	if it != nil {
		s.unlinkLocked(it)
	} else {
		it = &item{key: string(key)}
	}
	if exptime != 0 && exptime <= now {
		// Stored already expired: the old value is gone and nothing is visible.
		return Stored
	}
	it.value, it.flags, it.exptime, it.atime = value, flags, exptime, now
	if !s.makeRoomLocked(it.cost(), now) {
		return NoMemory
	}
	s.lastCAS++
	it.cas = s.lastCAS
	s.linkLocked(it)
	s.stats.TotalItems++
	return Stored
}

// Store stores value under key according to mode. exptime is a protocol
// exptime (see the package doc); it and flags are ignored by append and
// prepend. cas is used by ModeCAS only. The store takes ownership of value:
// the caller must not modify it afterwards.
func (s *Store) Store(mode Mode, key string, flags uint32, exptime int64, value []byte, cas uint64) Result {
	return s.store(mode, []byte(key), flags, exptime, value, cas)
}

// store is Store with a byte-slice key, which the protocol code uses to
// avoid allocating a string when the key already exists.
func (s *Store) store(mode Mode, key []byte, flags uint32, exptime int64, value []byte, cas uint64) Result {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.beginLocked()
	s.stats.CmdSet++
	old, _ := s.lookupLocked(key, now)
	if len(value) > s.maxItemSize {
		// As memcached: a set that fails for size leaves no stale value.
		if mode == ModeSet && old != nil {
			s.unlinkLocked(old)
		}
		return TooLarge
	}
	switch mode {
	case ModeAdd:
		if old != nil {
			s.bumpLocked(old, now)
			return NotStored
		}
	case ModeReplace:
		if old == nil {
			return NotStored
		}
	case ModeAppend, ModePrepend:
		if old == nil {
			return NotStored
		}
		if len(old.value)+len(value) > s.maxItemSize {
			return TooLarge
		}
		joined := make([]byte, 0, len(old.value)+len(value))
		if mode == ModeAppend {
			joined = append(append(joined, old.value...), value...)
		} else {
			joined = append(append(joined, value...), old.value...)
		}
		return s.installLocked(old, key, joined, old.flags, old.exptime, now)
	case ModeCAS:
		if old == nil {
			s.stats.CasMisses++
			return NotFound
		}
		if old.cas != cas {
			s.stats.CasBadval++
			return Exists
		}
		s.stats.CasHits++
	}
	return s.installLocked(old, key, value, flags, absTime(exptime, now), now)
}

// refuseTooLarge accounts for a storage command whose value exceeds
// MaxItemSize; as memcached, a refused set also removes the old value so a
// reader cannot mistake it for the one that failed to store.
func (s *Store) refuseTooLarge(mode Mode, key []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.beginLocked()
	s.stats.CmdSet++
	if mode != ModeSet {
		return
	}
	if it, _ := s.lookupLocked(key, now); it != nil {
		s.unlinkLocked(it)
	}
}

// Get returns the live item under key and marks it recently used.
func (s *Store) Get(key string) (Item, bool) {
	v, ok := s.get([]byte(key), false, 0)
	return v.item(key), ok
}

// GetAndTouch is Get that also sets the item's exptime (protocol form), as
// the gat command does.
func (s *Store) GetAndTouch(key string, exptime int64) (Item, bool) {
	v, ok := s.get([]byte(key), true, exptime)
	return v.item(key), ok
}

// view is what a lookup copies out of an item under the lock.
type view struct {
	value   []byte // shared, immutable
	flags   uint32
	exptime int64
	cas     uint64
	atime   int64
}

func (v view) item(key string) Item {
	if v.value == nil {
		return Item{}
	}
	return Item{Key: key, Value: v.value, Flags: v.flags, Exptime: v.exptime, CAS: v.cas, LastAccess: v.atime}
}

// get looks key up; with touch it also sets the exptime.
func (s *Store) get(key []byte, touch bool, exptime int64) (view, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.beginLocked()
	s.stats.CmdGet++
	if touch {
		s.stats.CmdTouch++
	}
	it, expired := s.lookupLocked(key, now)
	if it == nil {
		s.stats.GetMisses++
		if expired {
			s.stats.GetExpired++
		}
		if touch {
			s.stats.TouchMisses++
		}
		return view{}, false
	}
	s.stats.GetHits++
	v := view{value: it.value, flags: it.flags, exptime: it.exptime, cas: it.cas, atime: it.atime}
	if v.value == nil {
		v.value = []byte{}
	}
	if touch {
		s.stats.TouchHits++
		it.exptime = absTime(exptime, now)
		v.exptime = it.exptime
		if it.expiredAt(now) {
			// Returned this once, then gone (as memcached).
			s.unlinkLocked(it)
			return v, true
		}
	}
	s.bumpLocked(it, now)
	return v, true
}

// Touch sets the exptime (protocol form) of the live item under key.
// It returns Touched or NotFound.
func (s *Store) Touch(key string, exptime int64) Result { return s.touch([]byte(key), exptime) }

func (s *Store) touch(key []byte, exptime int64) Result {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.beginLocked()
	s.stats.CmdTouch++
	it, _ := s.lookupLocked(key, now)
	if it == nil {
		s.stats.TouchMisses++
		return NotFound
	}
	s.stats.TouchHits++
	it.exptime = absTime(exptime, now)
	if it.expiredAt(now) {
		s.unlinkLocked(it)
	} else {
		s.bumpLocked(it, now)
	}
	return Touched
}

// Delete removes the item under key. It returns Deleted or NotFound.
func (s *Store) Delete(key string) Result { return s.delete([]byte(key)) }

func (s *Store) delete(key []byte) Result {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.beginLocked()
	it, _ := s.lookupLocked(key, now)
	if it == nil {
		s.stats.DeleteMiss++
		return NotFound
	}
	s.stats.DeleteHits++
	s.unlinkLocked(it)
	return Deleted
}

// Incr adds delta to the decimal value under key, wrapping at 2^64; with
// decr it subtracts, stopping at 0. It returns the new value and Stored,
// or NotFound, or NonNumeric if the value is not a decimal uint64.
func (s *Store) Incr(key string, delta uint64, decr bool) (uint64, Result) {
	return s.incr([]byte(key), delta, decr)
}

func (s *Store) incr(key []byte, delta uint64, decr bool) (uint64, Result) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.beginLocked()
	it, _ := s.lookupLocked(key, now)
	if it == nil {
		if decr {
			s.stats.DecrMisses++
		} else {
			s.stats.IncrMisses++
		}
		return 0, NotFound
	}
	n, ok := parseDecimalValue(it.value)
	if !ok {
		return 0, NonNumeric
	}
	if decr {
		s.stats.DecrHits++
		if delta > n {
			n = 0
		} else {
			n -= delta
		}
	} else {
		s.stats.IncrHits++
		n += delta // wraps at 2^64, as the protocol says
	}
	var buf [20]byte
	v := appendUint(buf[:0], n)
	value := make([]byte, len(v))
	copy(value, v)
	if r := s.installLocked(it, key, value, it.flags, it.exptime, now); r != Stored {
		return 0, r
	}
	return n, Stored
}

// parseDecimalValue parses an item value for incr/decr: decimal digits,
// optionally followed by spaces (memcached pads values in place).
func parseDecimalValue(b []byte) (uint64, bool) {
	end := len(b)
	for end > 0 && b[end-1] == ' ' {
		end--
	}
	return parseUint64(b[:end])
}

// parseUint64 parses a non-empty run of decimal digits that fits in 64 bits.
func parseUint64(b []byte) (uint64, bool) {
	if len(b) == 0 {
		return 0, false
	}
	var n uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		d := uint64(c - '0')
		if n > (1<<64-1-d)/10 {
			return 0, false
		}
		n = n*10 + d
	}
	return n, true
}

// appendUint appends the decimal form of n.
func appendUint(b []byte, n uint64) []byte {
	var tmp [20]byte
	i := len(tmp)
	for {
		i--
		tmp[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			break
		}
	}
	return append(b, tmp[i:]...)
}

// FlushAll invalidates every item: now if delay <= 0, else when the
// protocol time delay (relative seconds up to 30 days, or absolute Unix
// time) arrives. A later call replaces a pending delayed flush.
func (s *Store) FlushAll(delay int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.beginLocked()
	s.stats.CmdFlush++
	if delay <= 0 {
		s.flushAt = 0
		s.clearLocked()
		return
	}
	s.flushAt = absTime(delay, now)
	if s.flushAt <= now {
		s.flushAt = 0
		s.clearLocked()
	}
}

// Stats returns a copy of the counters.
func (s *Store) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.beginLocked()
	st := s.stats
	st.Bytes = s.bytes
	return st
}

// ResetStats zeroes the operation counters (stats reset); the item counts
// and byte totals are state, not counters, and stay.
func (s *Store) ResetStats() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats = Stats{CurrItems: s.stats.CurrItems, LimitBytes: s.maxBytes}
}
