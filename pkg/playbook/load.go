package playbook

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// Load reads, parses and validates the playbook at path. On any problem it returns an ErrorList holding
// every error found in the file (not only the first), each positioned as file:line:col with path as
// given. A file larger than MaxFileSize is refused without being read further.
func Load(path string) (*Playbook, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, ErrorList{{File: path, Msg: "cannot read the file: " + pathErrorReason(err)}}
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.IsDir() {
		return nil, ErrorList{{File: path, Msg: "is a folder, not a playbook file"}}
	}
	// Read one byte more than the limit: enough to know the file is too large, never more.
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, ErrorList{{File: path, Msg: "cannot read the file: " + pathErrorReason(err)}}
	}
	return Parse(path, data)
}

func pathErrorReason(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// Parse is Load for bytes already read: name is used in error positions and to resolve relative paths
// (its folder; a relative name is relative to the current folder). It reads no file besides checking
// that script: files exist.
func Parse(name string, data []byte) (*Playbook, error) { return parse(name, data, nil) }

// Scripts holds the content of a playbook's script files by absolute path (Step.Script): what a
// playbook loaded on one machine takes to another, where the files need not exist.
type Scripts map[string][]byte

// ParseScripts is Parse with the script files given instead of looked for: name must be absolute,
// and it reads no file at all, so that parsing the same bytes gives the same playbook anywhere (a
// workflow replayed from its history parses with it). A script: that scripts lacks is an error.
func ParseScripts(name string, data []byte, scripts Scripts) (*Playbook, error) {
	if !filepath.IsAbs(name) {
		return nil, ErrorList{{File: name, Msg: "a playbook parsed with its scripts needs an absolute name"}}
	}
	if scripts == nil {
		scripts = Scripts{}
	}
	return parse(name, data, scripts)
}

// ReadScripts reads the content of every script file of the playbook, for ParseScripts elsewhere. A
// file larger than limit bytes is refused (limit <= 0: no limit), as is one that cannot be read.
func (p *Playbook) ReadScripts(limit int64) (Scripts, error) {
	out := Scripts{}
	for _, s := range p.Steps {
		if s.Script == "" || out[s.Script] != nil {
			continue
		}
		f, err := os.Open(s.Script)
		if err != nil {
			return nil, fmt.Errorf("step %q: read its script: %w", s.ID, err)
		}
		r := io.Reader(f)
		if limit > 0 {
			r = io.LimitReader(f, limit+1)
		}
		data, err := io.ReadAll(r)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("step %q: read its script: %w", s.ID, err)
		}
		if limit > 0 && int64(len(data)) > limit {
			return nil, fmt.Errorf("step %q: its script %s is larger than %d bytes, the most a run can carry", s.ID, s.Script, limit)
		}
		if data == nil {
			data = []byte{}
		}
		out[s.Script] = data
	}
	return out, nil
}

func parse(name string, data []byte, scripts Scripts) (*Playbook, error) {
	errs := func(line, col int, format string, args ...any) (*Playbook, error) {
		return nil, ErrorList{{File: name, Line: line, Col: col, Msg: fmt.Sprintf(format, args...)}}
	}
	if len(data) > MaxFileSize {
		return errs(1, 1, "playbook too large: more than %d bytes (1 MiB); split it into several playbooks", MaxFileSize)
	}
	sum := sha256.Sum256(data)
	if list := checkEncoding(name, data); len(list) > 0 {
		return nil, list
	}
	// yaml v3 skips a UTF-8 byte order mark itself; dropping it here keeps columns of line 1 the same
	// for the position mapping of expressions.
	src := bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))

	dec := yaml.NewDecoder(bytes.NewReader(src))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return errs(1, 1, "empty playbook: write at least version: 1, a name and steps")
		}
		return nil, ErrorList{yamlError(name, src, err)}
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		if line := documentEndLine(src); line > 0 {
			return errs(line, 1, `"..." ends the YAML document here, so what follows is not part of the playbook: remove this line`)
		}
		line := extra.Line
		if err != nil || line == 0 {
			line = secondDocumentLine(src)
		}
		return errs(line, 1, "multiple YAML documents in one file (a second one starts here); a playbook file holds one: remove this --- or move what follows to its own file")
	}
	if len(doc.Content) == 0 || (doc.Content[0].Kind == yaml.ScalarNode && doc.Content[0].Tag == "!!null") {
		return errs(1, 1, "empty playbook: write at least version: 1, a name and steps")
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return errs(root.Line, root.Column, "a playbook is a mapping with version, name and steps, not %s", describeNode(root))
	}

	abs, err := filepath.Abs(name)
	if err != nil {
		return errs(0, 0, "cannot resolve the path: %v", err)
	}
	d := &decoder{file: name}
	var raw rawPlaybook
	d.decodeStruct(reflect.ValueOf(&raw).Elem(), root, "")
	b := newBuilder(d, src)
	b.scripts = scripts
	pb := b.build(&raw, abs)
	pb.SHA256 = hex.EncodeToString(sum[:])
	if len(d.errs) > 0 {
		return nil, d.errs.sorted()
	}
	pb.Warnings = b.warnings.sorted()
	return pb, nil
}

// checkEncoding refuses what is not UTF-8: UTF-16 and UTF-32 files (yaml v3 would silently accept
// UTF-16), NUL bytes and invalid byte sequences, with the line and column of each offending line's
// first bad byte.
func checkEncoding(name string, data []byte) ErrorList {
	for _, bom := range []struct{ mark, enc string }{
		{"\x00\x00\xfe\xff", "UTF-32"}, {"\xff\xfe\x00\x00", "UTF-32"},
		{"\xfe\xff", "UTF-16"}, {"\xff\xfe", "UTF-16"},
	} {
		if bytes.HasPrefix(data, []byte(bom.mark)) {
			return ErrorList{{File: name, Line: 1, Col: 1, Msg: fmt.Sprintf("the file is %s (it starts with a %s byte order mark); save it as UTF-8", bom.enc, bom.enc)}}
		}
	}
	var list ErrorList
	line, lineStart := 1, 0
	reported := 0 // the line last reported: one error per line is enough
	for i := 0; i < len(data); {
		c := data[i]
		if c == '\n' {
			line, lineStart = line+1, i+1
			i++
			continue
		}
		if c < utf8.RuneSelf && c != 0 && !isControl(rune(c)) {
			i++
			continue
		}
		r, size := utf8.DecodeRune(data[i:])
		if (r == utf8.RuneError && size == 1) || c == 0 || isControl(r) {
			if reported != line {
				reported = line
				col := utf8.RuneCount(data[lineStart:i]) + 1
				switch {
				case c == 0:
					list = append(list, &Error{File: name, Line: line, Col: col, Msg: "NUL byte: this is a binary or UTF-16 file; save it as UTF-8 text"})
				case isControl(r):
					list = append(list, &Error{File: name, Line: line, Col: col, Msg: fmt.Sprintf("control character U+%04X: YAML allows no control characters but tab and line breaks; remove it, or write it as \\u%04X in a double-quoted string", r, r)})
				default:
					list = append(list, &Error{File: name, Line: line, Col: col, Msg: fmt.Sprintf("invalid UTF-8 (byte 0x%02x); save the file as UTF-8", c)})
				}
				if len(list) >= 20 {
					break
				}
			}
			i++
			continue
		}
		i += size
	}
	return list
}

// isControl reports whether YAML refuses r as a character of the file (YAML 1.2's printable set allows
// tab, line feed, carriage return, NEL and everything from space on, except DEL, the C1 controls and
// U+FFFE and U+FFFF). yaml v3 refuses them too, but without saying where.
func isControl(r rune) bool {
	switch {
	case r == '\t' || r == '\n' || r == '\r' || r == 0x85:
		return false
	case r < 0x20 || r == 0x7f || (r >= 0x80 && r <= 0x9f) || r == 0xfffe || r == 0xffff:
		return true
	}
	return false
}

// sourceLine returns line n (1-based) of src without its line break, or "".
func sourceLine(src []byte, n int) string {
	for i := 1; i < n; i++ {
		k := bytes.IndexByte(src, '\n')
		if k < 0 {
			return ""
		}
		src = src[k+1:]
	}
	if k := bytes.IndexByte(src, '\n'); k >= 0 {
		src = src[:k]
	}
	return strings.TrimSuffix(string(src), "\r")
}

// documentEndLine finds the line of a document end marker (...) followed by more than comments, or 0.
func documentEndLine(src []byte) int {
	end := 0
	for i, l := range strings.Split(string(src), "\n") {
		l = strings.TrimSuffix(l, "\r")
		if t := strings.TrimSpace(l); end == 0 && (l == "..." || strings.HasPrefix(l, "... ")) {
			end = i + 1
		} else if end > 0 && t != "" && !strings.HasPrefix(t, "#") {
			if strings.HasPrefix(l, "---") {
				return 0 // a second document: reported as such
			}
			return end
		}
	}
	return 0
}

// secondDocumentLine finds the line of the document marker that starts a second document, when yaml v3
// could not parse that document.
func secondDocumentLine(src []byte) int {
	sawContent := false
	for i, l := range strings.Split(string(src), "\n") {
		l = strings.TrimSuffix(l, "\r")
		if l == "---" || strings.HasPrefix(l, "--- ") {
			if sawContent {
				return i + 1
			}
			continue
		}
		if t := strings.TrimSpace(l); t != "" && !strings.HasPrefix(t, "#") && !strings.HasPrefix(t, "%") {
			sawContent = true
		}
	}
	return 1
}
