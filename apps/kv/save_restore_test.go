package kv

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"reflect"
	"testing"
	"time"
)

func saved(t *testing.T, s *Store) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := s.Save(&b); err != nil {
		t.Fatalf("Save = %v", err)
	}
	return b.Bytes()
}

func restored(t *testing.T, cfg Config, snap []byte) *Store {
	t.Helper()
	s := newTestStore(t, cfg)
	if err := s.Restore(bytes.NewReader(snap)); err != nil {
		t.Fatalf("Restore = %v", err)
	}
	return s
}

func TestSaveRestoreRoundTrip(t *testing.T) {
	clk := newFakeClock()
	cfg := Config{Now: clk.Now}
	s := newTestStore(t, cfg)
	store(t, s, ModeSet, "plain", "value", 0, 0, 0, Stored)
	store(t, s, ModeSet, "flags", "f", 0xdeadbeef, 0, 0, Stored)
	store(t, s, ModeSet, "expiring", "e", 0, 100, 0, Stored)
	store(t, s, ModeSet, "empty", "", 0, 0, 0, Stored)
	store(t, s, ModeSet, "binary", "\x00\r\n\xff", 0, 0, 0, Stored)
	store(t, s, ModeSet, "gone", "g", 0, 1, 0, Stored)
	clk.Advance(time.Second) // "gone" expires: not saved
	before := s.State()
	snap := saved(t, s)
	if SchemaVersion() == 1 {
		// A kv_schema1 build saves v1, which has no LastAccess: the
		// restore takes saved_at instead.
		for i := range before.Items {
			before.Items[i].LastAccess = before.SavedAt
		}
	}

	r := restored(t, cfg, snap)
	after := r.State()
	if !reflect.DeepEqual(before, after) {
		t.Fatalf("restored state = %+v; want %+v", after, before)
	}
	for _, it := range before.Items {
		got, ok := r.Get(it.Key)
		if !ok || !bytes.Equal(got.Value, it.Value) || got.Flags != it.Flags || got.CAS != it.CAS || got.Exptime != it.Exptime {
			t.Errorf("Get(%q) after restore = %+v, %v; want %+v", it.Key, got, ok, it)
		}
	}
	mustMiss(t, r, "gone")
	// A cas token from before the update still works after it.
	plain := mustGet(t, s, "plain", "value")
	store(t, r, ModeCAS, "plain", "new", 0, 0, plain.CAS, Stored)
	// New uniques continue above the saved ones.
	if c := mustGet(t, r, "plain", "new").CAS; c <= before.LastCAS {
		t.Errorf("CAS after restore = %d; want > %d", c, before.LastCAS)
	}
	// Expiry continues on the absolute clock.
	clk.Advance(99 * time.Second)
	mustMiss(t, r, "expiring")
}

// TestSaveRestoreRepeated: many save/restore cycles (a kernel updating
// itself again and again) keep contents, order and bytes stable.
func TestSaveRestoreRepeated(t *testing.T) {
	clk := newFakeClock()
	cfg := Config{Now: clk.Now}
	s := newTestStore(t, cfg)
	for i := 0; i < 100; i++ {
		store(t, s, ModeSet, fmt.Sprintf("k%03d", i), fmt.Sprint(i*i), uint32(i), int64(i%3)*1000, 0, Stored)
	}
	first := saved(t, s)
	snap := first
	for round := 0; round < 10; round++ {
		s = restored(t, cfg, snap)
		snap = saved(t, s)
		if !bytes.Equal(snap, first) {
			t.Fatalf("round %d: snapshot changed", round)
		}
	}
	mustGet(t, s, "k042", "1764")
}

// TestRestorePreservesLRU: recency survives the update, so eviction after
// a restore removes what would have been evicted before it.
func TestRestorePreservesLRU(t *testing.T) {
	const valueLen = 1000
	per := int64(itemOverhead + 2 + valueLen)
	cfg := Config{MaxBytes: 4 * per, MaxItemSize: valueLen}
	s := newTestStore(t, cfg)
	val := string(make([]byte, valueLen))
	for i := 0; i < 4; i++ {
		store(t, s, ModeSet, fmt.Sprintf("k%d", i), val, 0, 0, 0, Stored)
	}
	mustGet(t, s, "k0", val) // k1 is now the least recently used
	r := restored(t, cfg, saved(t, s))
	store(t, r, ModeSet, "k4", val, 0, 0, 0, Stored)
	mustMiss(t, r, "k1")
	mustGet(t, r, "k0", val)

	// Restoring into a smaller store keeps the most recently used.
	small := restored(t, Config{MaxBytes: 2 * per, MaxItemSize: valueLen}, saved(t, s))
	mustGet(t, small, "k3", val)
	mustGet(t, small, "k0", val)
	mustMiss(t, small, "k2")
	if st := small.Stats(); st.Evictions != 2 || st.CurrItems != 2 {
		t.Errorf("restore into a smaller store: evictions %d items %d; want 2 2", st.Evictions, st.CurrItems)
	}
	// And into one with a smaller item limit drops the large values.
	tiny := restored(t, Config{MaxItemSize: 10}, saved(t, s))
	if st := tiny.Stats(); st.CurrItems != 0 {
		t.Errorf("restore with MaxItemSize 10: %d items; want 0", st.CurrItems)
	}
}

func TestRestoreDropsExpiredAndAppliesFlush(t *testing.T) {
	clk := newFakeClock()
	cfg := Config{Now: clk.Now}
	s := newTestStore(t, cfg)
	store(t, s, ModeSet, "short", "v", 0, 5, 0, Stored)
	store(t, s, ModeSet, "long", "v", 0, 50, 0, Stored)
	snap := saved(t, s)
	clk.Advance(10 * time.Second) // the update took a while
	r := restored(t, cfg, snap)
	mustMiss(t, r, "short")
	mustGet(t, r, "long", "v")
	if st := r.Stats(); st.CurrItems != 1 {
		t.Errorf("curr_items = %d; want 1", st.CurrItems)
	}

	// A pending flush_all is carried, and applies on time.
	s.FlushAll(20)
	snap = saved(t, s)
	r = restored(t, cfg, snap)
	clk.Advance(19 * time.Second)
	mustGet(t, r, "long", "v")
	clk.Advance(time.Second) // the flush is due; "long" alone would live 20s more
	mustMiss(t, r, "long")
	// If it came due during the update, nothing is restored.
	clk2 := newFakeClock()
	s2 := newTestStore(t, Config{Now: clk2.Now})
	store(t, s2, ModeSet, "k", "v", 0, 0, 0, Stored)
	s2.FlushAll(5)
	snap = saved(t, s2)
	clk2.Advance(6 * time.Second)
	r = restored(t, Config{Now: clk2.Now}, snap)
	mustMiss(t, r, "k")
}

// corrupt returns a copy of snap with f applied.
func corrupt(snap []byte, f func(b []byte) []byte) []byte {
	return f(append([]byte(nil), snap...))
}

// resum recomputes the trailing checksum, so that structural checks (not
// the checksum) must catch a change.
func resum(b []byte) []byte {
	binary.LittleEndian.PutUint64(b[len(b)-8:], crcOf(b[:len(b)-8]))
	return b
}

func TestRestoreRejectsBadSnapshots(t *testing.T) {
	s := newTestStore(t, Config{})
	store(t, s, ModeSet, "a", "alpha", 1, 0, 0, Stored)
	store(t, s, ModeSet, "b", "beta", 2, 0, 0, Stored)
	snap := saved(t, s)
	itemAt := headerLen + bodyFixedLen // first item
	keyAt := itemAt + itemLen(SchemaVersion())
	tests := []struct {
		name string
		data []byte
		want error
	}{
		{"empty", nil, io.ErrUnexpectedEOF},
		{"bad magic", corrupt(snap, func(b []byte) []byte { b[0] = 'X'; return b }), ErrBadMagic},
		{"future version", corrupt(snap, func(b []byte) []byte { b[8] = CurrentSchema + 1; return b }), ErrVersion},
		{"version 0", corrupt(snap, func(b []byte) []byte { b[8] = 0; return b }), ErrVersion},
		{"reserved flags", corrupt(snap, func(b []byte) []byte { b[12] = 1; return b }), ErrCorrupt},
		{"flipped value byte", corrupt(snap, func(b []byte) []byte { b[len(b)-9] ^= 1; return b }), ErrChecksum},
		{"flipped checksum", corrupt(snap, func(b []byte) []byte { b[len(b)-1] ^= 1; return b }), ErrChecksum},
		{"truncated body", snap[:len(snap)-20], io.ErrUnexpectedEOF},
		{"truncated checksum", snap[:len(snap)-4], io.ErrUnexpectedEOF},
		{"body length too small", corrupt(snap, func(b []byte) []byte { binary.LittleEndian.PutUint64(b[16:], 3); return b }), ErrCorrupt},
		{"count too large", corrupt(snap, func(b []byte) []byte {
			binary.LittleEndian.PutUint64(b[headerLen+24:], 1<<40)
			return resum(b)
		}), ErrCorrupt},
		{"count too small", corrupt(snap, func(b []byte) []byte {
			binary.LittleEndian.PutUint64(b[headerLen+24:], 1)
			return resum(b)
		}), ErrCorrupt},
		{"zero key length", corrupt(snap, func(b []byte) []byte {
			binary.LittleEndian.PutUint16(b[itemAt:], 0)
			return resum(b)
		}), ErrCorrupt},
		{"cas above last", corrupt(snap, func(b []byte) []byte {
			binary.LittleEndian.PutUint64(b[itemAt+14:], 1000)
			return resum(b)
		}), ErrCorrupt},
		{"negative exptime", corrupt(snap, func(b []byte) []byte {
			binary.LittleEndian.PutUint64(b[itemAt+6:], 1<<63)
			return resum(b)
		}), ErrCorrupt},
		{"duplicate key", corrupt(snap, func(b []byte) []byte {
			b[keyAt] = 'b' // key "a" becomes "b"
			return resum(b)
		}), ErrCorrupt},
		{"control char in key", corrupt(snap, func(b []byte) []byte {
			b[keyAt] = '\n'
			return resum(b)
		}), ErrCorrupt},
	}
	for _, tt := range tests {
		r := newTestStore(t, Config{})
		store(t, r, ModeSet, "keep", "me", 0, 0, 0, Stored)
		err := r.Restore(bytes.NewReader(tt.data))
		if !errors.Is(err, tt.want) {
			t.Errorf("%s: Restore = %v; want %v", tt.name, err, tt.want)
		}
		// A failed restore leaves the store as it was.
		mustGet(t, r, "keep", "me")
	}
}

// TestSnapshotIsSelfDelimiting: a snapshot inside a larger stream is read
// exactly, so the next section follows it.
func TestSnapshotIsSelfDelimiting(t *testing.T) {
	a := newTestStore(t, Config{})
	store(t, a, ModeSet, "a", "1", 0, 0, 0, Stored)
	b := newTestStore(t, Config{})
	store(t, b, ModeSet, "b", "2", 0, 0, 0, Stored)
	var stream bytes.Buffer
	a.Save(&stream)
	b.Save(&stream)
	stream.WriteString("trailer")
	r := bytes.NewReader(stream.Bytes())
	ra, rb := newTestStore(t, Config{}), newTestStore(t, Config{})
	if err := ra.Restore(r); err != nil {
		t.Fatal(err)
	}
	if err := rb.Restore(r); err != nil {
		t.Fatal(err)
	}
	rest, _ := io.ReadAll(r)
	if string(rest) != "trailer" {
		t.Errorf("bytes after two snapshots = %q; want %q", rest, "trailer")
	}
	mustGet(t, ra, "a", "1")
	mustGet(t, rb, "b", "2")
}

// TestSnapshotLayout pins the format: changing it must bump the version.
// This is version 1, still written for images that read only it
// (TestSnapshotLayoutV2 pins version 2).
func TestSnapshotLayout(t *testing.T) {
	clk := newFakeClock()
	s := newTestStore(t, Config{Now: clk.Now})
	store(t, s, ModeSet, "k", "v", 7, 0, 0, Stored)
	var b bytes.Buffer
	if err := s.SaveVersion(&b, 1); err != nil {
		t.Fatal(err)
	}
	got := b.Bytes()
	var want bytes.Buffer
	le := binary.LittleEndian
	want.WriteString("MOLTKV\x00\n")
	want.Write(le.AppendUint32(nil, 1))
	want.Write(le.AppendUint32(nil, 0))
	want.Write(le.AppendUint64(nil, 32+26+1+1))
	want.Write(le.AppendUint64(nil, uint64(clk.Now().Unix()))) // saved_at
	want.Write(le.AppendUint64(nil, 1))                        // last_cas
	want.Write(le.AppendUint64(nil, 0))                        // flush_at
	want.Write(le.AppendUint64(nil, 1))                        // count
	want.Write(le.AppendUint16(nil, 1))                        // key_len
	want.Write(le.AppendUint32(nil, 7))                        // flags
	want.Write(le.AppendUint64(nil, 0))                        // exptime
	want.Write(le.AppendUint64(nil, 1))                        // cas
	want.Write(le.AppendUint32(nil, 1))                        // value_len
	want.WriteString("kv")
	want.Write(le.AppendUint64(nil, crcOf(want.Bytes())))
	if !bytes.Equal(got, want.Bytes()) {
		t.Errorf("snapshot =\n%x\nwant\n%x", got, want.Bytes())
	}
}

func TestSaveDuringTraffic(t *testing.T) {
	s := newTestStore(t, Config{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < 2000; i++ {
			s.Store(ModeSet, fmt.Sprintf("k%d", i%50), 0, 0, []byte(fmt.Sprint(i)), 0)
			s.Store(ModeAppend, "k1", 0, 0, []byte("x"), 0)
		}
	}()
	for i := 0; i < 20; i++ {
		snap := saved(t, s)
		if _, err := DecodeState(bytes.NewReader(snap)); err != nil {
			t.Fatalf("snapshot taken under traffic does not decode: %v", err)
		}
	}
	<-done
}

// TestSnapshotLayoutV2 pins version 2: version 1 plus atime per item.
func TestSnapshotLayoutV2(t *testing.T) {
	clk := newFakeClock()
	s := newTestStore(t, Config{Now: clk.Now})
	store(t, s, ModeSet, "k", "v", 7, 0, 0, Stored)
	var b bytes.Buffer
	if err := s.SaveVersion(&b, 2); err != nil {
		t.Fatal(err)
	}
	now := uint64(clk.Now().Unix())
	var want bytes.Buffer
	le := binary.LittleEndian
	want.WriteString("MOLTKV\x00\n")
	want.Write(le.AppendUint32(nil, 2))
	want.Write(le.AppendUint32(nil, 0))
	want.Write(le.AppendUint64(nil, 32+34+1+1))
	want.Write(le.AppendUint64(nil, now)) // saved_at
	want.Write(le.AppendUint64(nil, 1))   // last_cas
	want.Write(le.AppendUint64(nil, 0))   // flush_at
	want.Write(le.AppendUint64(nil, 1))   // count
	want.Write(le.AppendUint16(nil, 1))   // key_len
	want.Write(le.AppendUint32(nil, 7))   // flags
	want.Write(le.AppendUint64(nil, 0))   // exptime
	want.Write(le.AppendUint64(nil, 1))   // cas
	want.Write(le.AppendUint64(nil, now)) // atime
	want.Write(le.AppendUint32(nil, 1))   // value_len
	want.WriteString("kv")
	want.Write(le.AppendUint64(nil, crcOf(want.Bytes())))
	if !bytes.Equal(b.Bytes(), want.Bytes()) {
		t.Errorf("snapshot =\n%x\nwant\n%x", b.Bytes(), want.Bytes())
	}
	// The default build writes 2; a kv_schema1 build plays a v1 image.
	if SchemaVersion() != 2 && writeSchemaText != "1" {
		t.Errorf("SchemaVersion = %d; want the default 2", SchemaVersion())
	}
}
