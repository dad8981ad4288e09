package task

import (
	"bytes"
	"encoding/binary"
	"errors"
	"reflect"
	"testing"

	"github.com/molt-os/molt/updater/handoff"
)

func sampleTable() ProcessTable {
	return ProcessTable{Entries: []Entry{
		{Spec: Spec{Name: "kv", ID: 1, Version: 2, Oldest: 1, Policy: PolicyFresh}, Saved: 2, Sockets: []SocketID{1, 5, 9}},
		{Spec: Spec{Name: "echo", ID: 2, Version: 1, Oldest: 1, Policy: PolicyStop}, Saved: 1, Sockets: []SocketID{2, 3}},
		{Spec: Spec{Name: "status.http", ID: 3, Version: 1, Oldest: 1, Policy: PolicyRollback}},
	}}
}

// TestProcessTableLayout pins the v1 bytes: changing them needs a new
// section version.
func TestProcessTableLayout(t *testing.T) {
	pt := ProcessTable{Entries: []Entry{
		{Spec: Spec{Name: "kv", ID: 1, Version: 2, Oldest: 1, Policy: PolicyFresh}, Saved: 2, Sockets: []SocketID{4, 6, 9}},
	}}
	got, err := pt.Append(nil)
	if err != nil {
		t.Fatal(err)
	}
	le := binary.LittleEndian
	var w []byte
	w = le.AppendUint32(w, 1) // count
	w = le.AppendUint32(w, 0)
	w = le.AppendUint32(w, 1) // ID
	w = le.AppendUint32(w, 2) // version
	w = le.AppendUint32(w, 1) // oldest
	w = le.AppendUint32(w, 2) // saved
	w = append(w, 1, 0)       // policy, reserved
	w = le.AppendUint16(w, 2) // name length
	w = le.AppendUint32(w, 3) // sockets
	w = append(w, "kv\x00\x00\x00\x00\x00\x00"...)
	for _, s := range []uint32{4, 6, 9, 0} {
		w = le.AppendUint32(w, s)
	}
	if !bytes.Equal(got, w) {
		t.Errorf("payload\n%x\nwant\n%x", got, w)
	}
	if pt.Size() != len(got) {
		t.Errorf("Size = %d; want %d", pt.Size(), len(got))
	}
	st := State{ID: 7, Data: []byte("abc")}.Append(nil)
	if want := []byte{7, 0, 0, 0, 0, 0, 0, 0, 'a', 'b', 'c'}; !bytes.Equal(st, want) {
		t.Errorf("task-state payload %x; want %x", st, want)
	}
}

func TestProcessTableRoundTrip(t *testing.T) {
	pt := sampleTable()
	p, err := pt.Append(nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeProcessTable(p)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, pt) {
		t.Errorf("round trip\n%+v\nwant\n%+v", got, pt)
	}
	tg := got.Targets()
	if tg["kv"] != (Range{1, 2}) || tg["echo"] != (Range{1, 1}) {
		t.Errorf("Targets = %v", tg)
	}
	var empty ProcessTable
	p, _ = empty.Append(nil)
	if got, err := DecodeProcessTable(p); err != nil || len(got.Entries) != 0 {
		t.Errorf("empty table: %+v, %v", got, err)
	}
}

func TestProcessTableEncodeRefuses(t *testing.T) {
	for _, tt := range []struct {
		name string
		e    []Entry
	}{
		{"duplicate ID", []Entry{{Spec: Spec{Name: "a", ID: 1, Version: 1, Oldest: 1, Policy: 1}}, {Spec: Spec{Name: "b", ID: 1, Version: 1, Oldest: 1, Policy: 1}}}},
		{"socket order", []Entry{{Spec: Spec{Name: "a", ID: 1, Version: 1, Oldest: 1, Policy: 1}, Sockets: []SocketID{3, 2}}}},
		{"saved too new", []Entry{{Spec: Spec{Name: "a", ID: 1, Version: 1, Oldest: 1, Policy: 1}, Saved: 2}}},
	} {
		pt := ProcessTable{Entries: tt.e}
		if _, err := pt.Append(nil); !errors.Is(err, handoff.ErrInvalid) {
			t.Errorf("%s: Append = %v; want ErrInvalid", tt.name, err)
		}
	}
}

func TestDecodeProcessTableErrors(t *testing.T) {
	good, _ := func() ([]byte, error) { pt := sampleTable(); return pt.Append(nil) }()
	mut := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(good)) }
	le := binary.LittleEndian
	for _, tt := range []struct {
		name string
		p    []byte
		want error
		msg  string
	}{
		{"empty", nil, handoff.ErrTruncated, "cannot hold its 8-byte header"},
		{"reserved", mut(func(b []byte) []byte { b[4] = 1; return b }), handoff.ErrReserved, "offset 0x4"},
		{"count cap", mut(func(b []byte) []byte { le.PutUint32(b, MaxTasks+1); return b }), handoff.ErrTooLarge, "257 entries"},
		{"count beyond", mut(func(b []byte) []byte { le.PutUint32(b, 100); return b }), handoff.ErrTruncated, "100 entries need"},
		{"truncated", good[:len(good)-8], handoff.ErrTruncated, "entry 2"},
		{"trailing", append(bytes.Clone(good), make([]byte, 8)...), handoff.ErrInvalid, "follow the last entry"},
		{"ID 0", mut(func(b []byte) []byte { le.PutUint32(b[8:], 0); return b }), handoff.ErrInvalid, "ID 0"},
		{"version 0", mut(func(b []byte) []byte { le.PutUint32(b[12:], 0); return b }), handoff.ErrInvalid, "versions"},
		{"saved too new", mut(func(b []byte) []byte { le.PutUint32(b[20:], 3); return b }), handoff.ErrInvalid, "saved state v3"},
		{"policy", mut(func(b []byte) []byte { b[24] = 7; return b }), handoff.ErrInvalid, "policy(7)"},
		{"reserved byte", mut(func(b []byte) []byte { b[25] = 1; return b }), handoff.ErrReserved, "+0x11"},
		{"name 0", mut(func(b []byte) []byte { le.PutUint16(b[26:], 0); return b }), handoff.ErrInvalid, "name length 0"},
		{"bad name", mut(func(b []byte) []byte { b[32] = 'K'; return b }), handoff.ErrInvalid, "only a-z"},
		{"name padding", mut(func(b []byte) []byte { b[34] = 1; return b }), handoff.ErrReserved, "padding"},
		{"socket cap", mut(func(b []byte) []byte { le.PutUint32(b[28:], MaxSockets+1); return b }), handoff.ErrTooLarge, "16385 sockets"},
		{"socket order", mut(func(b []byte) []byte { le.PutUint32(b[40:], 9); return b }), handoff.ErrInvalid, "not above"},
		{"socket 0", mut(func(b []byte) []byte { le.PutUint32(b[40:], 0); return b }), handoff.ErrInvalid, "zero"},
		{"socket padding", mut(func(b []byte) []byte { b[52] = 1; return b }), handoff.ErrReserved, "padding"},
		{"duplicate", mut(func(b []byte) []byte { le.PutUint32(b[56:], 1); return b }), handoff.ErrInvalid, "repeats"},
	} {
		_, err := DecodeProcessTable(tt.p)
		if !errors.Is(err, tt.want) {
			t.Errorf("%s: error %v; want %v", tt.name, err, tt.want)
			continue
		}
		wantErrContains(t, err, tt.msg)
	}
}

func TestDecodeStateErrors(t *testing.T) {
	if _, err := DecodeState([]byte{1, 0, 0}); !errors.Is(err, handoff.ErrTruncated) {
		t.Errorf("short: %v", err)
	}
	if _, err := DecodeState(make([]byte, 8)); !errors.Is(err, handoff.ErrInvalid) {
		t.Errorf("ID 0: %v", err)
	}
	if _, err := DecodeState([]byte{1, 0, 0, 0, 0, 1, 0, 0}); !errors.Is(err, handoff.ErrReserved) {
		t.Errorf("reserved: %v", err)
	}
	s, err := DecodeState([]byte{1, 0, 0, 0, 0, 0, 0, 0})
	if err != nil || s.ID != 1 || len(s.Data) != 0 {
		t.Errorf("empty state: %+v, %v", s, err)
	}
}

// FuzzDecodeProcessTable: no panic, errors wrap a handoff sentinel,
// allocation bounded by the input, and whatever decodes re-encodes to the
// same bytes (the encoding is canonical). Run with
//
//	go test -run '^$' -fuzz FuzzDecodeProcessTable ./updater/task
func FuzzDecodeProcessTable(f *testing.F) {
	pt := sampleTable()
	good, _ := pt.Append(nil)
	f.Add(good)
	f.Add(good[:len(good)-4])
	var empty ProcessTable
	e, _ := empty.Append(nil)
	f.Add(e)
	one := ProcessTable{Entries: pt.Entries[:1]}
	o, _ := one.Append(nil)
	f.Add(o)
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, p []byte) {
		got, err := DecodeProcessTable(p)
		if err != nil {
			if !wrapsSentinel(err) {
				t.Fatalf("error %v wraps no handoff sentinel", err)
			}
			return
		}
		again, err := got.Append(nil)
		if err != nil {
			t.Fatalf("re-encoding an accepted table: %v", err)
		}
		if !bytes.Equal(again, p) {
			t.Fatalf("re-encoding differs:\n got %x\nwant %x", again, p)
		}
		// What it accepts also goes through the registry and a Restore
		// without trouble.
		NewTable().Restore([]handoff.Decoded{{Section: handoff.Section{Type: handoff.TypeProcessTable}, Value: got}})
	})
}

// FuzzDecodeState: the task-state envelope.
func FuzzDecodeState(f *testing.F) {
	f.Add(State{ID: 1, Data: []byte("hello")}.Append(nil))
	f.Add(State{ID: 0xffffffff}.Append(nil))
	f.Add([]byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, p []byte) {
		s, err := DecodeState(p)
		if err != nil {
			if !wrapsSentinel(err) {
				t.Fatalf("error %v wraps no handoff sentinel", err)
			}
			return
		}
		if again := s.Append(nil); !bytes.Equal(again, p) {
			t.Fatalf("re-encoding differs: %x vs %x", again, p)
		}
	})
}

func wrapsSentinel(err error) bool {
	for _, s := range []error{handoff.ErrTruncated, handoff.ErrTooLarge, handoff.ErrReserved, handoff.ErrInvalid} {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}
