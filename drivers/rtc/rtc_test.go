package rtc

import (
	"testing"
	"time"
)

func TestUnixMatchesTimePackage(t *testing.T) {
	for _, tc := range []Time{
		{1970, 1, 1, 0, 0, 0}, {2000, 2, 29, 12, 30, 5}, {2026, 11, 22, 2, 32, 50},
		{2099, 12, 31, 23, 59, 59}, {2024, 3, 1, 0, 0, 0},
	} {
		want := time.Date(tc.Year, time.Month(tc.Month), tc.Day, tc.Hour, tc.Minute, tc.Second, 0, time.UTC).Unix()
		if got := tc.Unix(); got != want {
			t.Errorf("%+v.Unix() = %d; want %d", tc, got, want)
		}
	}
}

func TestBCD(t *testing.T) {
	if got := bcd(0x59); got != 59 {
		t.Errorf("bcd(0x59) = %d; want 59", got)
	}
}
