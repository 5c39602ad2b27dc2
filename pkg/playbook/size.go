package playbook

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// sizeUnits are the units ParseSize knows, longest suffixes first, so that "KiB" is not read as "B".
var sizeUnits = []struct {
	suffix string
	mult   int64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30},
	{"KB", 1000}, {"MB", 1000 * 1000}, {"GB", 1000 * 1000 * 1000},
	{"B", 1},
}

// errSizeTooLarge is wrapped by ParseSize's error for a well-formed size that does not fit in an int64,
// so that output_limit can report it as out of range rather than malformed.
var errSizeTooLarge = errors.New("too large")

// ParseSize reads a number of bytes: a whole number of decimal digits, optionally followed by a unit,
// with or without spaces between them: "65536", "512KiB", "1 MiB", "1GiB", "10B". KiB, MiB and GiB
// are powers of 1024; KB, MB and GB powers of 1000. Spaces around the whole are ignored.
//
// It returns an error for anything else (a sign, a fraction, an unknown unit, an empty number) and
// for a size that does not fit in an int64, rather than a wrapped-around value. Zero is a valid size;
// callers with a range (such as 1 byte to MaxOutputLimit) check it themselves.
func ParseSize(s string) (int64, error) {
	num := strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range sizeUnits {
		if strings.HasSuffix(num, u.suffix) {
			num, mult = strings.TrimSpace(strings.TrimSuffix(num, u.suffix)), u.mult
			break
		}
	}
	if num == "" || strings.TrimLeft(num, "0123456789") != "" {
		return 0, fmt.Errorf("%q is not a size: want a whole number of bytes, optionally with a unit (B, KiB, MiB, GiB, KB, MB, GB)", s)
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n > math.MaxInt64/mult {
		return 0, fmt.Errorf("size %q is %w", s, errSizeTooLarge)
	}
	return n * mult, nil
}
