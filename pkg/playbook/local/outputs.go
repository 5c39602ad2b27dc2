package local

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"
)

// MaxOutputsSize is the largest $PLAYBOOK_OUTPUT file a step may write. Outputs are meant for small
// values passed between steps (ids, paths, versions); bulk data belongs in files.
const MaxOutputsSize = 1 << 20

// ErrOutputsTooLarge is returned by ReadOutputs when the file exceeds MaxOutputsSize.
var ErrOutputsTooLarge = errors.New("PLAYBOOK_OUTPUT is larger than 1 MiB")

// ReadOutputs reads and parses the $PLAYBOOK_OUTPUT file of one attempt. A missing or empty file means
// no outputs.
func ReadOutputs(path string) (map[string]string, error) {
	// Most steps write no outputs: the file the runner created for them is still empty, and one stat
	// says so without opening it.
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err == syscall.ENOENT || (err == nil && st.Mode&syscall.S_IFMT == syscall.S_IFREG && st.Size == 0) {
		return nil, nil
	}
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read PLAYBOOK_OUTPUT: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxOutputsSize+1))
	if err != nil {
		return nil, fmt.Errorf("read PLAYBOOK_OUTPUT: %w", err)
	}
	if len(data) > MaxOutputsSize {
		return nil, ErrOutputsTooLarge
	}
	return ParseOutputs(data)
}

// ParseOutputs parses the $PLAYBOOK_OUTPUT format: one `key=value` per line, or a multi-line value as
// `key<<DELIM`, the value's lines, then a line that is exactly DELIM. Keys are letters, digits, _ and -.
// Empty lines are ignored, CRLF line ends are accepted and a later value replaces an earlier one.
func ParseOutputs(data []byte) (map[string]string, error) {
	out := map[string]string{}
	lineNo := 0
	next := func() ([]byte, bool) {
		if len(data) == 0 {
			return nil, false
		}
		var line []byte
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line, data = data[:i], data[i+1:]
		} else {
			line, data = data, nil
		}
		lineNo++
		return bytes.TrimSuffix(line, []byte{'\r'}), true
	}
	for {
		line, ok := next()
		if !ok {
			return out, nil
		}
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		eq := bytes.IndexByte(line, '=')
		heredoc := bytes.Index(line, []byte("<<"))
		switch {
		case heredoc >= 0 && (eq < 0 || heredoc < eq):
			key := string(line[:heredoc])
			delim := string(line[heredoc+2:])
			if err := checkOutputKey(key, lineNo); err != nil {
				return nil, err
			}
			if delim == "" {
				return nil, fmt.Errorf("PLAYBOOK_OUTPUT line %d: %s needs a delimiter after <<", lineNo, quoteShort(key, "name"))
			}
			start := lineNo
			var value []byte
			closed := false
			for first := true; ; first = false {
				l, ok := next()
				if !ok {
					break
				}
				if string(l) == delim {
					closed = true
					break
				}
				if !first {
					value = append(value, '\n')
				}
				value = append(value, l...)
			}
			if !closed {
				return nil, fmt.Errorf("PLAYBOOK_OUTPUT line %d: %s is never closed by a line %s", start, quoteShort(key, "name"), quoteShort(delim, "delimiter"))
			}
			out[key] = string(value)
		case eq >= 0:
			key := string(line[:eq])
			if err := checkOutputKey(key, lineNo); err != nil {
				return nil, err
			}
			out[key] = string(line[eq+1:])
		default:
			return nil, fmt.Errorf("PLAYBOOK_OUTPUT line %d: want key=value or key<<DELIMITER; this line has neither = nor <<", lineNo)
		}
	}
}

func checkOutputKey(key string, lineNo int) error {
	if key == "" {
		return fmt.Errorf("PLAYBOOK_OUTPUT line %d: empty output name; write name=value", lineNo)
	}
	for i := 0; i < len(key); i++ {
		c := key[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return fmt.Errorf("PLAYBOOK_OUTPUT line %d: the output name before = or << may hold only letters, digits, _ and -", lineNo)
		}
	}
	return nil
}

// Messages never quote the file's text beyond short names: a step that writes a secret into
// $PLAYBOOK_OUTPUT by mistake (echo "$TOKEN" >> "$PLAYBOOK_OUTPUT") must not find it, or a piece of it
// that masking cannot recognise, in its error. Output names (letters, digits, _ and -) and heredoc
// delimiters are shown when short, whole, so masking sees them whole.
func quoteShort(s, noun string) string {
	const max = 64
	if len(s) > max {
		return fmt.Sprintf("the %d-byte %s", len(s), noun)
	}
	return fmt.Sprintf("%q", s)
}
