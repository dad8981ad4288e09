package kv

import (
	"errors"
	"fmt"
	"strconv"
	"testing"
	"time"
)

func mustGet(t *testing.T, s *Store, key, want string) Item {
	t.Helper()
	it, ok := s.Get(key)
	if !ok {
		t.Fatalf("Get(%q) = miss; want %q", key, want)
	}
	if string(it.Value) != want {
		t.Fatalf("Get(%q) = %q; want %q", key, it.Value, want)
	}
	return it
}

func mustMiss(t *testing.T, s *Store, key string) {
	t.Helper()
	if it, ok := s.Get(key); ok {
		t.Fatalf("Get(%q) = %q; want miss", key, it.Value)
	}
}

func store(t *testing.T, s *Store, mode Mode, key, value string, flags uint32, exptime int64, cas uint64, want Result) {
	t.Helper()
	if got := s.Store(mode, key, flags, exptime, []byte(value), cas); got != want {
		t.Fatalf("Store(%d, %q, %q) = %v; want %v", mode, key, value, got, want)
	}
}

func TestNewStoreConfig(t *testing.T) {
	if _, err := NewStore(Config{MaxBytes: 1000, MaxItemSize: 1 << 20}); !errors.Is(err, ErrConfig) {
		t.Errorf("NewStore(MaxBytes < MaxItemSize) = %v; want ErrConfig", err)
	}
	s := newTestStore(t, Config{})
	if got := s.MaxItemSize(); got != DefaultMaxItemSize {
		t.Errorf("MaxItemSize() = %d; want %d", got, DefaultMaxItemSize)
	}
	if got := s.Stats().LimitBytes; got != DefaultMaxBytes {
		t.Errorf("LimitBytes = %d; want %d", got, DefaultMaxBytes)
	}
}

func TestStoreModes(t *testing.T) {
	s := newTestStore(t, Config{})
	store(t, s, ModeSet, "k", "v1", 42, 0, 0, Stored)
	if it := mustGet(t, s, "k", "v1"); it.Flags != 42 {
		t.Errorf("flags = %d; want 42", it.Flags)
	}
	store(t, s, ModeAdd, "k", "v2", 0, 0, 0, NotStored)
	store(t, s, ModeAdd, "new", "n", 0, 0, 0, Stored)
	store(t, s, ModeReplace, "missing", "x", 0, 0, 0, NotStored)
	store(t, s, ModeReplace, "k", "v3", 7, 0, 0, Stored)
	mustGet(t, s, "k", "v3")
	store(t, s, ModeAppend, "missing", "x", 0, 0, 0, NotStored)
	store(t, s, ModePrepend, "missing", "x", 0, 0, 0, NotStored)
	mustMiss(t, s, "missing")
	store(t, s, ModeAppend, "k", "-tail", 99, 0, 0, Stored)
	store(t, s, ModePrepend, "k", "head-", 99, 0, 0, Stored)
	if it := mustGet(t, s, "k", "head-v3-tail"); it.Flags != 7 {
		t.Errorf("flags after append = %d; want 7 (append keeps flags)", it.Flags)
	}
	store(t, s, ModeSet, "empty", "", 0, 0, 0, Stored)
	mustGet(t, s, "empty", "")
	if got := s.Delete("k"); got != Deleted {
		t.Errorf("Delete(k) = %v; want Deleted", got)
	}
	if got := s.Delete("k"); got != NotFound {
		t.Errorf("Delete(k) again = %v; want NotFound", got)
	}
}

func TestStoreCAS(t *testing.T) {
	s := newTestStore(t, Config{})
	store(t, s, ModeCAS, "k", "v", 0, 0, 1, NotFound)
	store(t, s, ModeSet, "k", "v", 0, 0, 0, Stored)
	it := mustGet(t, s, "k", "v")
	store(t, s, ModeCAS, "k", "w", 0, 0, it.CAS+1, Exists)
	store(t, s, ModeCAS, "k", "w", 0, 0, it.CAS, Stored)
	it2 := mustGet(t, s, "k", "w")
	if it2.CAS == it.CAS {
		t.Errorf("CAS after cas store = %d; want a new unique", it2.CAS)
	}
	store(t, s, ModeCAS, "k", "x", 0, 0, it.CAS, Exists)
	st := s.Stats()
	if st.CasMisses != 1 || st.CasBadval != 2 || st.CasHits != 1 {
		t.Errorf("cas stats = misses %d badval %d hits %d; want 1 2 1", st.CasMisses, st.CasBadval, st.CasHits)
	}
	// Every modification gets a new, larger unique.
	prev := it2.CAS
	for i := 0; i < 5; i++ {
		store(t, s, ModeAppend, "k", "+", 0, 0, 0, Stored)
		if c := mustGet(t, s, "k", "w"+repeat("+", i+1)).CAS; c <= prev {
			t.Fatalf("CAS after append %d = %d; want > %d", i, c, prev)
		} else {
			prev = c
		}
	}
}

func repeat(s string, n int) string {
	out := ""
	for i := 0; i < n; i++ {
		out += s
	}
	return out
}

func TestStoreIncrDecr(t *testing.T) {
	s := newTestStore(t, Config{})
	if _, r := s.Incr("missing", 1, false); r != NotFound {
		t.Errorf("Incr(missing) = %v; want NotFound", r)
	}
	if _, r := s.Incr("missing", 1, true); r != NotFound {
		t.Errorf("Decr(missing) = %v; want NotFound", r)
	}
	tests := []struct {
		value string
		delta uint64
		decr  bool
		want  uint64
		res   Result
	}{
		{"0", 1, false, 1, Stored},
		{"41", 1, false, 42, Stored},
		{"18446744073709551615", 1, false, 0, Stored}, // wraps at 2^64
		{"18446744073709551615", 2, false, 1, Stored},
		{"18446744073709551614", 1, false, 18446744073709551615, Stored},
		{"5", 10, true, 0, Stored}, // decr stops at 0
		{"10", 3, true, 7, Stored},
		{"12  ", 1, false, 13, Stored}, // trailing spaces, as memcached pads
		{"007", 1, false, 8, Stored},
		{"abc", 1, false, 0, NonNumeric},
		{"", 1, false, 0, NonNumeric},
		{"-1", 1, false, 0, NonNumeric},
		{" 1", 1, false, 0, NonNumeric},
		{"1x", 1, true, 0, NonNumeric},
		{"18446744073709551616", 1, false, 0, NonNumeric}, // 2^64 does not fit
	}
	for _, tt := range tests {
		store(t, s, ModeSet, "n", tt.value, 3, 0, 0, Stored)
		before := mustGet(t, s, "n", tt.value)
		got, r := s.Incr("n", tt.delta, tt.decr)
		if got != tt.want || r != tt.res {
			t.Errorf("Incr(%q, %d, decr=%v) = %d, %v; want %d, %v", tt.value, tt.delta, tt.decr, got, r, tt.want, tt.res)
			continue
		}
		if r != Stored {
			mustGet(t, s, "n", tt.value)
			continue
		}
		after := mustGet(t, s, "n", strconv.FormatUint(tt.want, 10))
		if after.Flags != 3 || after.CAS == before.CAS {
			t.Errorf("after Incr(%q): flags %d cas %d (before %d); want flags kept and a new cas", tt.value, after.Flags, after.CAS, before.CAS)
		}
	}
}

func TestStoreExpiry(t *testing.T) {
	clk := newFakeClock()
	s := newTestStore(t, Config{Now: clk.Now})
	now := clk.Now().Unix()
	store(t, s, ModeSet, "rel", "v", 0, 10, 0, Stored)
	store(t, s, ModeSet, "abs", "v", 0, now+maxRelativeExptime+100, 0, Stored) // absolute Unix time
	store(t, s, ModeSet, "past", "v", 0, now-5, 0, Stored)
	store(t, s, ModeSet, "never", "v", 0, 0, 0, Stored)
	mustMiss(t, s, "past") // an absolute time in the past is already expired
	store(t, s, ModeSet, "neg", "old", 0, 0, 0, Stored)
	store(t, s, ModeSet, "neg", "new", 0, -1, 0, Stored) // negative: expired at once
	mustMiss(t, s, "neg")

	clk.Advance(9 * time.Second)
	mustGet(t, s, "rel", "v")
	clk.Advance(time.Second)
	mustMiss(t, s, "rel")
	if st := s.Stats(); st.GetExpired != 1 {
		t.Errorf("get_expired = %d; want 1", st.GetExpired)
	}
	// Expired keys behave as absent for every command.
	store(t, s, ModeReplace, "rel", "x", 0, 0, 0, NotStored)
	store(t, s, ModeAdd, "rel", "x", 0, 0, 0, Stored)

	clk.Advance(maxRelativeExptime * time.Second)
	mustGet(t, s, "abs", "v")
	clk.Advance(100 * time.Second)
	mustMiss(t, s, "abs")
	mustGet(t, s, "never", "v")

	// touch replaces the exptime; gat returns the item and touches it.
	store(t, s, ModeSet, "t", "v", 0, 5, 0, Stored)
	if r := s.Touch("t", 100); r != Touched {
		t.Fatalf("Touch(t) = %v; want Touched", r)
	}
	if r := s.Touch("missing", 100); r != NotFound {
		t.Fatalf("Touch(missing) = %v; want NotFound", r)
	}
	clk.Advance(50 * time.Second)
	mustGet(t, s, "t", "v")
	if it, ok := s.GetAndTouch("t", 10); !ok || it.Exptime != clk.Now().Unix()+10 {
		t.Fatalf("GetAndTouch(t, 10) = %+v, %v; want hit expiring in 10s", it, ok)
	}
	clk.Advance(10 * time.Second)
	mustMiss(t, s, "t")
	store(t, s, ModeSet, "t", "v", 0, 0, 0, Stored)
	if r := s.Touch("t", -1); r != Touched {
		t.Fatalf("Touch(t, -1) = %v; want Touched", r)
	}
	mustMiss(t, s, "t")
}

func TestStoreLRUEviction(t *testing.T) {
	const valueLen = 1000
	per := int64(itemOverhead + 2 + valueLen) // keys are "k0".."k9"
	// Room for exactly five items of this shape.
	s := newTestStore(t, Config{MaxBytes: 5 * per, MaxItemSize: valueLen})
	val := string(make([]byte, valueLen))
	for i := 0; i < 5; i++ {
		store(t, s, ModeSet, fmt.Sprintf("k%d", i), val, 0, 0, 0, Stored)
	}
	if st := s.Stats(); st.CurrItems != 5 || st.Bytes != 5*per || st.Evictions != 0 {
		t.Fatalf("after 5 sets: items %d bytes %d evictions %d; want 5 %d 0", st.CurrItems, st.Bytes, st.Evictions, 5*per)
	}
	// Touch k0 and k2 by reading them: k1 is now least recently used,
	// then k3, k4, k0, k2.
	mustGet(t, s, "k0", val)
	mustGet(t, s, "k2", val)
	store(t, s, ModeSet, "k5", val, 0, 0, 0, Stored)
	mustMiss(t, s, "k1")
	store(t, s, ModeSet, "k6", val, 0, 0, 0, Stored)
	mustMiss(t, s, "k3")
	for _, k := range []string{"k4", "k0", "k2", "k5", "k6"} {
		mustGet(t, s, k, val)
	}
	if st := s.Stats(); st.Evictions != 2 || st.CurrItems != 5 {
		t.Errorf("evictions %d items %d; want 2 5", st.Evictions, st.CurrItems)
	}
	// An add that fails also counts as a use (as memcached).
	store(t, s, ModeAdd, "k4", val, 0, 0, 0, NotStored)
	store(t, s, ModeSet, "k7", val, 0, 0, 0, Stored)
	mustMiss(t, s, "k0")
	mustGet(t, s, "k4", val)
}

func TestStoreEvictsExpiredAsReclaimed(t *testing.T) {
	clk := newFakeClock()
	const valueLen = 400
	per := int64(itemOverhead + 2 + valueLen)
	s := newTestStore(t, Config{MaxBytes: 2 * per, MaxItemSize: valueLen, Now: clk.Now})
	val := string(make([]byte, valueLen))
	store(t, s, ModeSet, "k0", val, 0, 1, 0, Stored)
	store(t, s, ModeSet, "k1", val, 0, 0, 0, Stored)
	clk.Advance(2 * time.Second)
	store(t, s, ModeSet, "k2", val, 0, 0, 0, Stored) // reclaims expired k0
	store(t, s, ModeSet, "k3", val, 0, 0, 0, Stored) // evicts live k1
	if st := s.Stats(); st.Reclaimed != 1 || st.Evictions != 1 {
		t.Errorf("reclaimed %d evictions %d; want 1 1", st.Reclaimed, st.Evictions)
	}
}

func TestStoreTooLarge(t *testing.T) {
	s := newTestStore(t, Config{MaxItemSize: 10})
	store(t, s, ModeSet, "k", "0123456789", 0, 0, 0, Stored)
	store(t, s, ModeAppend, "k", "x", 0, 0, 0, TooLarge)
	mustGet(t, s, "k", "0123456789")
	// A set that fails for size removes the old value (as memcached).
	store(t, s, ModeSet, "k", "0123456789x", 0, 0, 0, TooLarge)
	mustMiss(t, s, "k")
}

func TestStoreFlushAll(t *testing.T) {
	clk := newFakeClock()
	s := newTestStore(t, Config{Now: clk.Now})
	store(t, s, ModeSet, "a", "1", 0, 0, 0, Stored)
	s.FlushAll(0)
	mustMiss(t, s, "a")
	if st := s.Stats(); st.CurrItems != 0 || st.Bytes != 0 {
		t.Errorf("after flush_all: items %d bytes %d; want 0 0", st.CurrItems, st.Bytes)
	}

	store(t, s, ModeSet, "a", "1", 0, 0, 0, Stored)
	s.FlushAll(10)
	clk.Advance(5 * time.Second)
	store(t, s, ModeSet, "b", "2", 0, 0, 0, Stored) // before the deadline: flushed too
	clk.Advance(4 * time.Second)
	mustGet(t, s, "a", "1")
	mustGet(t, s, "b", "2")
	clk.Advance(time.Second)
	mustMiss(t, s, "a")
	mustMiss(t, s, "b")
	store(t, s, ModeSet, "c", "3", 0, 0, 0, Stored) // after: survives
	clk.Advance(time.Hour)
	mustGet(t, s, "c", "3")

	// An immediate flush cancels a pending delayed one.
	s.FlushAll(10)
	s.FlushAll(0)
	store(t, s, ModeSet, "d", "4", 0, 0, 0, Stored)
	clk.Advance(time.Minute)
	mustGet(t, s, "d", "4")

	// A delay that is an absolute time in the past flushes at once.
	s.FlushAll(maxRelativeExptime + 1)
	mustMiss(t, s, "d")
}

func TestAppendUintParseUint(t *testing.T) {
	for _, n := range []uint64{0, 1, 9, 10, 12345, 1<<64 - 1} {
		b := appendUint(nil, n)
		if string(b) != strconv.FormatUint(n, 10) {
			t.Errorf("appendUint(%d) = %q", n, b)
		}
		if got, ok := parseUint64(b); !ok || got != n {
			t.Errorf("parseUint64(%q) = %d, %v; want %d, true", b, got, ok, n)
		}
	}
	for _, s := range []string{"", "-1", "+1", "1 ", "18446744073709551616", "99999999999999999999"} {
		if got, ok := parseUint64([]byte(s)); ok {
			t.Errorf("parseUint64(%q) = %d, true; want false", s, got)
		}
	}
	for _, tt := range []struct {
		s  string
		n  int64
		ok bool
	}{{"-9223372036854775808", -1 << 63, true}, {"9223372036854775807", 1<<63 - 1, true}, {"9223372036854775808", 0, false}, {"-", 0, false}, {"--1", 0, false}} {
		if n, ok := parseInt64([]byte(tt.s)); n != tt.n || ok != tt.ok {
			t.Errorf("parseInt64(%q) = %d, %v; want %d, %v", tt.s, n, ok, tt.n, tt.ok)
		}
	}
}
