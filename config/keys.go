package config

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
)

// KeySize is the length of a token encryption key: AES-256.
const KeySize = 32

// maxKeyIDLen is the longest key id.
const maxKeyIDLen = 32

// Key is one token encryption key of NOTIONSYNC_TOKEN_KEYS. Its field names
// and types match tokens.Key, so tokens.Key(k) converts it.
//
// A Key prints (fmt, encoding/json, log/slog) as its id with the key material
// redacted.
type Key struct {
	// ID names the key; it is stored beside every ciphertext, so old
	// ciphertexts stay readable after the primary key changes. 1 to 32
	// characters of A-Z, a-z, 0-9, _ and -.
	ID string
	// Secret is the key material: KeySize (32) bytes.
	Secret []byte
}

// String returns "id:[redacted]".
func (k Key) String() string { return k.ID + ":" + Redacted }

// GoString is used by %#v.
func (k Key) GoString() string {
	return "config.Key{ID:" + strconv.Quote(k.ID) + ", Secret:" + Redacted + "}"
}

// Format prints the redacted form for every verb and flag.
func (k Key) Format(f fmt.State, verb rune) { formatRedacted(f, verb, k.String(), k.GoString()) }

// MarshalJSON encodes the id and a redacted secret.
func (k Key) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		ID     string `json:"id"`
		Secret string `json:"secret"`
	}{k.ID, Redacted})
}

// LogValue makes log/slog print the redacted form.
func (k Key) LogValue() slog.Value { return slog.StringValue(k.String()) }

// KeyRing is the parsed NOTIONSYNC_TOKEN_KEYS: token encryption keys in the
// order given. The first key is the primary (it encrypts); the others only
// decrypt, which lets keys rotate: prepend a new key, let records be
// re-encrypted, then drop the old key.
//
// A KeyRing is immutable and safe for concurrent use; its methods return
// copies of the key material. It prints (fmt, encoding/json, log/slog) as its
// key ids with the key material redacted.
type KeyRing struct{ keys []Key }

// ParseKeyRing parses a comma-separated list of keyid:base64key pairs. The key
// is standard or URL-safe base64, padded or not, and must decode to 32 bytes.
// Ids must be unique and 1 to 32 characters of A-Z, a-z, 0-9, _ and -.
// Spaces around entries, ids and keys are ignored.
//
// The error lists every bad entry by its position (1-based) and, when the id
// is well-formed, its id. It never contains key material nor an ill-formed
// id (which may be key material pasted in the wrong place).
func ParseKeyRing(s string) (KeyRing, error) {
	if strings.TrimSpace(s) == "" {
		return KeyRing{}, errors.New("no keys: want keyid:base64key[,keyid:base64key...]")
	}
	entries := strings.Split(s, ",")
	keys := make([]Key, 0, len(entries))
	firstUse := make(map[string]int, len(entries))
	var problems []string
	for i, entry := range entries {
		n := i + 1
		entry = strings.TrimSpace(entry)
		if entry == "" {
			problems = append(problems, fmt.Sprintf("entry %d is empty", n))
			continue
		}
		id, encoded, ok := strings.Cut(entry, ":")
		if !ok {
			problems = append(problems, fmt.Sprintf("entry %d: want keyid:base64key", n))
			continue
		}
		id, encoded = strings.TrimSpace(id), strings.TrimSpace(encoded)
		if !validKeyID(id) {
			problems = append(problems, fmt.Sprintf("entry %d: key id must be 1 to %d characters of A-Z, a-z, 0-9, _ and -", n, maxKeyIDLen))
			continue
		}
		where := fmt.Sprintf("entry %d (id %q)", n, id)
		if prev, dup := firstUse[id]; dup {
			problems = append(problems, fmt.Sprintf("%s: id already used by entry %d", where, prev))
			continue
		}
		firstUse[id] = n
		secret, ok := decodeKey(encoded)
		switch {
		case (!ok || len(secret) != KeySize) && isHex(encoded) && (!ok || len(encoded) == 2*KeySize):
			// openssl rand -hex 32 is a common slip: 64 hex digits decode
			// as base64 to 48 bytes, and "48 bytes" alone does not say why.
			// (Only that length, or a string base64 refuses: "AAAA..." is
			// base64 of zero bytes, and all hex digits too.)
			problems = append(problems, fmt.Sprintf("%s: key looks like hex (%d hex digits); the key must be base64 of %d bytes: "+
				"convert it with echo KEY | xxd -r -p | base64, or make a new one with %s", where, len(encoded), KeySize, keyHint))
			continue
		case !ok:
			problems = append(problems, fmt.Sprintf("%s: key is not valid base64; want base64 of %d bytes, e.g. from %s", where, KeySize, keyHint))
			continue
		case len(secret) != KeySize:
			problems = append(problems, fmt.Sprintf("%s: key is %d bytes, want %d (AES-256): base64 of %d random bytes, e.g. from %s",
				where, len(secret), KeySize, KeySize, keyHint))
			continue
		}
		keys = append(keys, Key{ID: id, Secret: secret})
	}
	if len(problems) > 0 {
		return KeyRing{}, errors.New(strings.Join(problems, "; "))
	}
	return KeyRing{keys: keys}, nil
}

// keyHint is the command that makes a valid key.
const keyHint = "openssl rand -base64 32"

// isHex reports whether s is a non-empty string of hex digits only.
func isHex(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !strings.ContainsRune("0123456789abcdefABCDEF", r) {
			return false
		}
	}
	return true
}

// decodeKey decodes standard or URL-safe base64, padded or not.
func decodeKey(s string) ([]byte, bool) {
	if s == "" {
		return nil, false
	}
	s = strings.TrimRight(s, "=")
	for _, enc := range []*base64.Encoding{base64.RawStdEncoding, base64.RawURLEncoding} {
		if b, err := enc.Strict().DecodeString(s); err == nil {
			return b, true
		}
	}
	return nil, false
}

// validKeyID reports whether id is 1 to 32 characters of [A-Za-z0-9_-].
func validKeyID(id string) bool {
	if id == "" || len(id) > maxKeyIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// UnmarshalText parses text with ParseKeyRing.
func (r *KeyRing) UnmarshalText(text []byte) error {
	parsed, err := ParseKeyRing(string(text))
	if err != nil {
		return err
	}
	*r = parsed
	return nil
}

// Len is the number of keys.
func (r KeyRing) Len() int { return len(r.keys) }

// Primary returns (a copy of) the key that encrypts: the first one. It returns
// the zero Key when the ring is empty.
func (r KeyRing) Primary() Key {
	if len(r.keys) == 0 {
		return Key{}
	}
	return cloneKey(r.keys[0])
}

// Keys returns copies of all keys, primary first.
func (r KeyRing) Keys() []Key {
	out := make([]Key, len(r.keys))
	for i, k := range r.keys {
		out[i] = cloneKey(k)
	}
	return out
}

// Lookup returns (a copy of) the key with the given id.
func (r KeyRing) Lookup(id string) (Key, bool) {
	for _, k := range r.keys {
		if k.ID == id {
			return cloneKey(k), true
		}
	}
	return Key{}, false
}

// IDs returns the key ids, primary first.
func (r KeyRing) IDs() []string {
	out := make([]string, len(r.keys))
	for i, k := range r.keys {
		out[i] = k.ID
	}
	return out
}

// String returns "id1:[redacted],id2:[redacted]".
func (r KeyRing) String() string {
	parts := make([]string, len(r.keys))
	for i, k := range r.keys {
		parts[i] = k.String()
	}
	return strings.Join(parts, ",")
}

// GoString is used by %#v.
func (r KeyRing) GoString() string { return "config.KeyRing(" + strconv.Quote(r.String()) + ")" }

// Format prints the redacted form for every verb and flag.
func (r KeyRing) Format(f fmt.State, verb rune) { formatRedacted(f, verb, r.String(), r.GoString()) }

// MarshalJSON encodes the keys with their material redacted.
func (r KeyRing) MarshalJSON() ([]byte, error) {
	if len(r.keys) == 0 {
		return []byte("[]"), nil
	}
	return json.Marshal(r.keys)
}

// LogValue makes log/slog print the redacted form.
func (r KeyRing) LogValue() slog.Value { return slog.StringValue(r.String()) }

// Equal reports whether r and other hold the same ids and key material in the
// same order (constant time is not needed: both sides are configuration).
func (r KeyRing) Equal(other KeyRing) bool {
	if len(r.keys) != len(other.keys) {
		return false
	}
	for i := range r.keys {
		if r.keys[i].ID != other.keys[i].ID || !bytes.Equal(r.keys[i].Secret, other.keys[i].Secret) {
			return false
		}
	}
	return true
}

func cloneKey(k Key) Key { return Key{ID: k.ID, Secret: bytes.Clone(k.Secret)} }
