package playbook

import (
	"strings"
	"testing"
)

// TestParseSize: every form the CLI's and the playbook's parsers took gives the same bytes, and a size
// too large for an int64 is refused instead of wrapping around (17179869185GiB is 2^64 + 1GiB, which
// wrapped to 1GiB).
func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{
		"0": 0, "1000": 1000, "65536": 65536, "007": 7, "10B": 10, "512KiB": 512 << 10, "64 KiB": 64 << 10,
		" 1MiB ": 1 << 20, "1GiB": 1 << 30, "2KB": 2000, "2MB": 2_000_000, "1GB": 1_000_000_000,
		"9223372036854775807": 1<<63 - 1, "9223372036854775807B": 1<<63 - 1, "8589934591GiB": 8589934591 << 30,
	} {
		got, err := ParseSize(in)
		if err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for in, want := range map[string]string{
		"17179869185GiB":       "too large",
		"8589934592GiB":        "too large",
		"9223372036854775808":  "too large",
		"9223372036854775808B": "too large",
		"":                     "not a size",
		"GiB":                  "not a size",
		"-1":                   "not a size",
		"+1":                   "not a size",
		"1.5MiB":               "not a size",
		"1TB":                  "not a size",
		"1 KB KB":              "not a size",
		"lots":                 "not a size",
		"0x10":                 "not a size",
	} {
		got, err := ParseSize(in)
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), in) {
			t.Errorf("ParseSize(%q) = %d, %v; want an error naming it: %s", in, got, err, want)
		}
	}
}
