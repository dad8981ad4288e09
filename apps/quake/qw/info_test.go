package qw

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

// The userinfo ezquake 3.6.1 sent to mvdsv (quakeworld-protocol.md).
const ezquakeUserinfo = `\rate\25000\msg\1\noaim\1\*client\ezQuake 666\name\botA\*z_ext\511`

func TestParseInfoEzquake(t *testing.T) {
	in, err := ParseInfo(ezquakeUserinfo, MaxUserinfoLen)
	if err != nil {
		t.Fatal(err)
	}
	want := Info{{"rate", "25000"}, {"msg", "1"}, {"noaim", "1"}, {"*client", "ezQuake 666"}, {"name", "botA"}, {"*z_ext", "511"}}
	if !reflect.DeepEqual(in, want) {
		t.Fatalf("ParseInfo = %v; want %v", in, want)
	}
	if s := in.String(); s != ezquakeUserinfo {
		t.Fatalf("String() = %q; want %q", s, ezquakeUserinfo)
	}
	if v := in.Value("name"); v != "botA" {
		t.Errorf(`Value("name") = %q; want botA`, v)
	}
	if _, ok := in.Get("team"); ok {
		t.Errorf(`Get("team") found a key that is not there`)
	}
}

func TestInfoSetDelete(t *testing.T) {
	var in Info
	for _, kv := range [][2]string{{"hostname", "molt"}, {"maxclients", "8"}, {"hostname", "molt 2"}, {"empty", ""}} {
		if err := in.Set(kv[0], kv[1]); err != nil {
			t.Fatalf("Set(%q, %q): %v", kv[0], kv[1], err)
		}
	}
	if s := in.String(); s != `\hostname\molt 2\maxclients\8\empty\` {
		t.Fatalf("String() = %q", s)
	}
	in.Delete("maxclients")
	in.Delete("nothere")
	if s := in.String(); s != `\hostname\molt 2\empty\` {
		t.Fatalf("after Delete: %q", s)
	}
	back, err := ParseInfo(in.String(), MaxServerinfoLen)
	if err != nil || !reflect.DeepEqual(back, in) {
		t.Fatalf("ParseInfo(String()) = %v, %v; want %v", back, err, in)
	}
	for _, kv := range [][2]string{{"", "x"}, {"a\\b", "x"}, {"k", "a\"b"}, {"k", "a\nb"}, {"k", "a\x00b"}, {strings.Repeat("k", 64), "v"}, {"k", strings.Repeat("v", 64)}} {
		if err := in.Set(kv[0], kv[1]); !errors.Is(err, ErrInfo) {
			t.Errorf("Set(%q, %q) = %v; want ErrInfo", kv[0], kv[1], err)
		}
	}
	if err := in.Set(strings.Repeat("k", 63), strings.Repeat("v", 63)); err != nil {
		t.Errorf("Set with 63-byte key and value: %v", err)
	}
}

func TestParseInfoRejects(t *testing.T) {
	cases := map[string]string{
		"no leading backslash": `name\bob`,
		"key without value":    `\name\bob\team`,
		"trailing backslash":   `\name\bob\`,
		"empty key":            `\\bob`,
		"duplicate key":        `\name\a\name\b`,
		"quote":                `\name\a"b`,
		"newline":              "\\name\\a\nb",
		"NUL":                  "\\name\\a\x00b",
		"long key":             `\` + strings.Repeat("k", 64) + `\v`,
		"long value":           `\k\` + strings.Repeat("v", 64),
		"over the limit":       `\k\` + strings.Repeat("v", 60) + `\k2\` + strings.Repeat("v", 60),
	}
	for name, s := range cases {
		if in, err := ParseInfo(s, 100); !errors.Is(err, ErrInfo) {
			t.Errorf("%s: ParseInfo(%q) = %v, %v; want ErrInfo", name, s, in, err)
		}
	}
	if in, err := ParseInfo("", 10); err != nil || len(in) != 0 {
		t.Errorf(`ParseInfo("") = %v, %v; want empty`, in, err)
	}
	if in, err := ParseInfo(`\k\`, 0); err != nil || !reflect.DeepEqual(in, Info{{"k", ""}}) {
		t.Errorf(`ParseInfo("\k\") = %v, %v; want one key with an empty value`, in, err)
	}
}

func TestInfoEncodeChecks(t *testing.T) {
	if _, err := (Info{{"a", "1"}, {"a", "2"}}).Encode(0); !errors.Is(err, ErrInfo) {
		t.Errorf("Encode with a duplicate key: %v; want ErrInfo", err)
	}
	if _, err := (Info{{"a", "12345"}}).Encode(5); !errors.Is(err, ErrInfo) {
		t.Errorf("Encode over the limit: %v; want ErrInfo", err)
	}
	if s, err := (Info{{"a", "1"}}).Encode(5); err != nil || s != `\a\1` {
		t.Errorf(`Encode = %q, %v; want \a\1`, s, err)
	}
}
