package selftest

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"
)

// checkSmoke exercises the runtime and standard library paths every image
// relies on: formatting (reflection, interfaces, floats), maps, sorting,
// strconv and encoding/json. None of these touch the kernel directly, but
// they break when the runtime's memory, FPU/SSE state or type data is
// corrupted, which is what a ring-0 layer can get wrong.
func checkSmoke(t *T) {
	smokeFmt(t)
	smokeMaps(t)
	smokeSort(t)
	smokeStrconv(t)
	smokeJSON(t)
}

type point struct {
	X, Y int
	Tag  string
}

func (p point) String() string { return fmt.Sprintf("(%d,%d)%s", p.X, p.Y, p.Tag) }

func smokeFmt(t *T) {
	var nilp *int
	// Variables, not constants: constant 0.1+0.2 is exact (0.3), while
	// float64 addition at run time must show the usual rounding.
	tenth, fifth := 0.1, 0.2
	cases := []struct {
		got, want string
	}{
		{fmt.Sprintf("%d %5d %-4d| %x %X %o %b", 42, -7, 3, 255, 255, 8, 5), "42    -7 3   | ff FF 10 101"},
		{fmt.Sprintf("%.3f %e %g %g", math.Pi, 1234.5678, 1e21, tenth+fifth), "3.142 1.234568e+03 1e+21 0.30000000000000004"},
		{fmt.Sprintf("%v %v %v", math.Inf(1), math.NaN(), -0.0), "+Inf NaN 0"},
		{fmt.Sprintf("%q %s %10s|%-6s|", "a\"b", []byte("hi"), "r", "l"), `"a\"b" hi          r|l     |`},
		{fmt.Sprintf("%v %+v", struct{ A, B int }{1, 2}, struct{ A, B int }{1, 2}), "{1 2} {A:1 B:2}"},
		{fmt.Sprintf("%v %s", point{1, 2, "p"}, &point{3, 4, "q"}), "(1,2)p (3,4)q"},
		{fmt.Sprintf("%v %v %v", []int{1, 2}, map[string]int{"b": 2, "a": 1}, [2]bool{true}), "[1 2] map[a:1 b:2] [true false]"},
		{fmt.Sprintf("%v %v %t", nilp, nil, false), "<nil> <nil> false"},
		{fmt.Sprintf("%c %U %x", 'é', '⌘', "hé"), "é U+2318 68c3a9"},
		{fmt.Sprintf("%v", errors.New("boom")), "boom"},
		{fmt.Sprintf("%T %T %T", 1.5, point{}, []any{}), "float64 selftest.point []interface {}"},
		{fmt.Sprintf("%08.3f|%+d|%x", -3.14159, 5, uint64(math.MaxUint64)), "-003.142|+5|ffffffffffffffff"},
		{fmt.Sprint(complex(1, -2), int8(-128), uint16(65535)), "(1-2i) -128 65535"},
	}
	for i, c := range cases {
		if c.got != c.want {
			t.Errorf("fmt case %d = %q; want %q", i, c.got, c.want)
		}
	}
}

func smokeMaps(t *T) {
	const n = 10000
	m := make(map[string]int)
	for i := range n {
		m["k"+strconv.Itoa(i)] = i
	}
	for i := 0; i < n; i += 2 {
		delete(m, "k"+strconv.Itoa(i))
	}
	if len(m) != n/2 {
		t.Errorf("map len after deletes = %d; want %d", len(m), n/2)
	}
	sum := 0
	for k, v := range m {
		if k != "k"+strconv.Itoa(v) || v%2 != 1 {
			t.Errorf("map entry %q = %d is wrong", k, v)
			break
		}
		sum += v
	}
	if want := (n / 2) * (n / 2); sum != want { // sum of the first n/2 odd numbers
		t.Errorf("sum of map values = %d; want %d", sum, want)
	}
	// Struct and float keys hash through different runtime paths.
	pm := map[point]float64{{1, 2, "a"}: 1.5, {1, 2, "b"}: 2.5}
	fm := map[float64]int{0.1: 1, 0.2: 2}
	if pm[point{1, 2, "b"}] != 2.5 || fm[0.1+0.1] != 2 || len(pm) != 2 {
		t.Errorf("struct/float map lookups wrong: %v %v", pm, fm)
	}
}

func smokeSort(t *T) {
	// A fixed linear congruential sequence: deterministic input, no PRNG.
	xs := make([]int, 5000)
	x := uint32(12345)
	for i := range xs {
		x = x*1664525 + 1013904223
		xs[i] = int(x >> 8)
	}
	ys := slices.Clone(xs)
	sort.Ints(xs)
	slices.Sort(ys)
	if !sort.IntsAreSorted(xs) || !slices.Equal(xs, ys) {
		t.Errorf("sort.Ints and slices.Sort disagree or do not sort")
	}
	words := strings.Fields("pear apple fig banana cherry date apple")
	sort.SliceStable(words, func(i, j int) bool { return len(words[i]) < len(words[j]) })
	if got, want := strings.Join(words, " "), "fig pear date apple apple banana cherry"; got != want {
		t.Errorf("stable sort by length = %q; want %q", got, want)
	}
}

func smokeStrconv(t *T) {
	for _, f := range []float64{0, -1.5, math.Pi, 1e-300, math.MaxFloat64, 5e-324, 123456789.125} {
		s := strconv.FormatFloat(f, 'g', -1, 64)
		g, err := strconv.ParseFloat(s, 64)
		if err != nil || g != f {
			t.Errorf("ParseFloat(FormatFloat(%v)) = %v, %v", f, g, err)
		}
	}
	for _, i := range []int64{0, -1, math.MaxInt64, math.MinInt64, 1 << 40} {
		for _, base := range []int{2, 10, 16, 36} {
			s := strconv.FormatInt(i, base)
			j, err := strconv.ParseInt(s, base, 64)
			if err != nil || j != i {
				t.Errorf("ParseInt(FormatInt(%d, %d)) = %d, %v", i, base, j, err)
			}
		}
	}
	if _, err := strconv.Atoi("12x"); err == nil {
		t.Errorf(`Atoi("12x") succeeded`)
	}
	if q := strconv.Quote("tab\there ☺\x00"); q != `"tab\there ☺\x00"` {
		t.Errorf("Quote = %s", q)
	}
	if s := "héllo, 世界"; utf8.RuneCountInString(s) != 9 || !utf8.ValidString(s) {
		t.Errorf("utf8 rune count of %q = %d; want 9", s, utf8.RuneCountInString(s))
	}
}

type jsonDoc struct {
	Name    string             `json:"name"`
	Count   int                `json:"count"`
	Ratio   float64            `json:"ratio"`
	Tags    []string           `json:"tags"`
	Attrs   map[string]float64 `json:"attrs"`
	Nested  *jsonDoc           `json:"nested,omitempty"`
	Skipped string             `json:"-"`
	Raw     json.RawMessage    `json:"raw"`
}

func smokeJSON(t *T) {
	in := jsonDoc{
		Name: "molt \"κ\" <x>", Count: -3, Ratio: 0.125,
		Tags:  []string{"a", "", "c"},
		Attrs: map[string]float64{"z": 1e10, "a": -0.5},
		Nested: &jsonDoc{
			Name: "inner", Tags: []string{}, Attrs: map[string]float64{}, Raw: json.RawMessage(`null`),
		},
		Skipped: "gone",
		Raw:     json.RawMessage(`{"k":[1,2,3]}`),
	}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatalf("json.Marshal: %v", err)
	}
	var out jsonDoc
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("json.Unmarshal(%s): %v", b, err)
	}
	in.Skipped = ""
	if !reflect.DeepEqual(in, out) {
		t.Errorf("json round trip:\n got %+v\nwant %+v\njson %s", out, in, b)
	}
	// Map keys are sorted and HTML is escaped: a fixed encoding.
	if !strings.Contains(string(b), `"attrs":{"a":-0.5,"z":10000000000}`) ||
		!strings.Contains(string(b), `\u003cx\u003e`) {
		t.Errorf("json encoding not canonical: %s", b)
	}
	var anyv any
	if err := json.Unmarshal([]byte(`{"a":[1,"x",true,null,{"b":2.5}]}`), &anyv); err != nil {
		t.Errorf("json.Unmarshal into any: %v", err)
	} else if got := fmt.Sprint(anyv); got != "map[a:[1 x true <nil> map[b:2.5]]]" {
		t.Errorf("json any = %s", got)
	}
	if err := json.Unmarshal([]byte(`{"count":"x"}`), &out); err == nil {
		t.Errorf("json.Unmarshal of a string into an int succeeded")
	}
}
