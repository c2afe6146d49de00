package pgsink

import (
	"bytes"
	"strings"
	"unicode/utf8"
)

// PostgreSQL's text and jsonb cannot hold U+0000, and jsonb rejects
// unpaired UTF-16 surrogate escapes; invalid UTF-8 is rejected by both.
// Notion text can contain any of them. They are replaced by U+FFFD: the
// stored JSON stays valid and keeps every other byte of what Notion
// returned, and the replacement is visible to readers.

const replacementEscape = `\ufffd`

// sanitizeJSON returns valid JSON b with \u0000 escapes and unpaired
// surrogate escapes replaced by \ufffd and invalid UTF-8 by U+FFFD. b is
// returned unchanged (not copied) when nothing needs replacing.
func sanitizeJSON(b []byte) []byte {
	if !bytes.Contains(b, []byte(`\u`)) && utf8.Valid(b) {
		return b
	}
	out := make([]byte, 0, len(b))
	inString := false
	for i := 0; i < len(b); {
		c := b[i]
		switch {
		case !inString:
			out = append(out, c)
			inString = c == '"'
			i++
		case c == '"':
			out = append(out, c)
			inString = false
			i++
		case c == '\\' && i+1 < len(b) && b[i+1] == 'u' && i+6 <= len(b):
			r, ok := hex4(b[i+2 : i+6])
			switch {
			case !ok:
				out = append(out, b[i:i+6]...) // cannot happen in valid JSON
				i += 6
			case r == 0:
				out = append(out, replacementEscape...)
				i += 6
			case r >= 0xD800 && r <= 0xDBFF:
				if i+12 <= len(b) && b[i+6] == '\\' && b[i+7] == 'u' {
					if lo, ok := hex4(b[i+8 : i+12]); ok && lo >= 0xDC00 && lo <= 0xDFFF {
						out = append(out, b[i:i+12]...)
						i += 12
						continue
					}
				}
				out = append(out, replacementEscape...)
				i += 6
			case r >= 0xDC00 && r <= 0xDFFF:
				out = append(out, replacementEscape...)
				i += 6
			default:
				out = append(out, b[i:i+6]...)
				i += 6
			}
		case c == '\\' && i+1 < len(b):
			out = append(out, b[i], b[i+1])
			i += 2
		case c < utf8.RuneSelf:
			out = append(out, c)
			i++
		default:
			r, size := utf8.DecodeRune(b[i:])
			if r == utf8.RuneError && size == 1 {
				out = utf8.AppendRune(out, utf8.RuneError)
			} else {
				out = append(out, b[i:i+size]...)
			}
			i += size
		}
	}
	return out
}

func hex4(b []byte) (rune, bool) {
	var r rune
	for _, c := range b {
		r <<= 4
		switch {
		case c >= '0' && c <= '9':
			r |= rune(c - '0')
		case c >= 'a' && c <= 'f':
			r |= rune(c-'a') + 10
		case c >= 'A' && c <= 'F':
			r |= rune(c-'A') + 10
		default:
			return 0, false
		}
	}
	return r, true
}

// sanitizeText makes s storable in a text column.
func sanitizeText(s string) string {
	if strings.IndexByte(s, 0) < 0 && utf8.ValidString(s) {
		return s
	}
	return strings.ToValidUTF8(strings.ReplaceAll(s, "\x00", "\uFFFD"), "\uFFFD")
}
