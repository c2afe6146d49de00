package config

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

func TestParseKeyRing(t *testing.T) {
	t.Parallel()
	key1, k1 := testKey(1)
	key2, k2 := testKey(2)
	urlSafe := base64.RawURLEncoding.EncodeToString(bytes.Repeat([]byte{0xfb, 0xff}, 16)) // has - and _
	good := []struct {
		in      string
		wantIDs []string
	}{
		{"k1:" + k1, []string{"k1"}},
		{"new:" + k2 + ",old:" + k1, []string{"new", "old"}},
		{" a : " + k1 + " ,\tb:" + k2 + " ", []string{"a", "b"}},
		{"raw:" + strings.TrimRight(k1, "="), []string{"raw"}},
		{"url:" + urlSafe, []string{"url"}},
		{strings.Repeat("x", 32) + ":" + k1, []string{strings.Repeat("x", 32)}},
		{"A-z_0-9:" + k1, []string{"A-z_0-9"}},
	}
	for _, tc := range good {
		r, err := ParseKeyRing(tc.in)
		if err != nil {
			t.Errorf("ParseKeyRing(%q): %v", tc.in, err)
			continue
		}
		if !slices.Equal(r.IDs(), tc.wantIDs) || r.Len() != len(tc.wantIDs) {
			t.Errorf("ParseKeyRing(%q) ids = %v, want %v", tc.in, r.IDs(), tc.wantIDs)
		}
	}

	r, _ := ParseKeyRing("new:" + k2 + ",old:" + k1)
	if p := r.Primary(); p.ID != "new" || !bytes.Equal(p.Secret, key2) {
		t.Errorf("Primary = %v", p)
	}
	if k, ok := r.Lookup("old"); !ok || !bytes.Equal(k.Secret, key1) {
		t.Errorf("Lookup(old) = %v, %v", k, ok)
	}
	if _, ok := r.Lookup("missing"); ok {
		t.Error("Lookup(missing) found a key")
	}
	// Handed-out keys are copies: changing them does not change the ring.
	r.Keys()[0].Secret[0] ^= 0xff
	r.Primary().Secret[1] ^= 0xff
	if p := r.Primary(); !bytes.Equal(p.Secret, key2) {
		t.Error("mutating a returned key changed the ring")
	}
	if (KeyRing{}).Primary().ID != "" || (KeyRing{}).Len() != 0 {
		t.Error("empty ring")
	}

	bad := []struct {
		in, want string
	}{
		{"", "no keys"},
		{"  ", "no keys"},
		{k1, "entry 1: want keyid:base64key"},
		{"k1:" + k1 + ",", "entry 2 is empty"},
		{":" + k1, "entry 1: key id must be 1 to 32 characters"},
		{strings.Repeat("x", 33) + ":" + k1, "entry 1: key id must be"},
		{"k.1:" + k1, "entry 1: key id must be"},
		{"k1:", `entry 1 (id "k1"): key is not valid base64`},
		{"k1:" + k1 + "!", `entry 1 (id "k1"): key is not valid base64`},
		{"k1:" + base64.StdEncoding.EncodeToString(make([]byte, 16)), `entry 1 (id "k1"): key is 16 bytes, want 32 (AES-256)`},
		{"k1:" + base64.StdEncoding.EncodeToString(make([]byte, 33)), "key is 33 bytes"},
		{"k1:" + base64.StdEncoding.EncodeToString(make([]byte, 16)), "base64 of 32 random bytes, e.g. from openssl rand -base64 32"},
		// openssl rand -hex 32: 64 hex digits, which base64 reads as 48 bytes.
		{"k1:" + strings.Repeat("0f", 32), `entry 1 (id "k1"): key looks like hex (64 hex digits); the key must be base64 of 32 bytes`},
		{"k1:" + strings.Repeat("a1", 32), "make a new one with openssl rand -base64 32"},
		{"k1:" + strings.Repeat("A1", 32), "key looks like hex (64 hex digits)"},
		{"k1:" + k1 + ",k1:" + k2, `entry 2 (id "k1"): id already used by entry 1`},
		{"a:x,b:" + k1 + ",c", `entry 1 (id "a"): key is not valid base64; want base64 of 32 bytes, e.g. from openssl rand -base64 32; entry 3: want keyid:base64key`},
	}
	for _, tc := range bad {
		_, err := ParseKeyRing(tc.in)
		if err == nil {
			t.Errorf("ParseKeyRing(%q): no error", tc.in)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseKeyRing(%q) = %q, want it to contain %q", tc.in, err, tc.want)
		}
	}
}

func TestKeyRingPrinting(t *testing.T) {
	t.Parallel()
	_, k1 := testKey(1)
	_, k2 := testKey(2)
	r, _ := ParseKeyRing("new:" + k2 + ",old:" + k1)
	checks := map[string]string{
		r.String():                      "new:[redacted],old:[redacted]",
		fmt.Sprintf("%#v", r):           `config.KeyRing("new:[redacted],old:[redacted]")`,
		fmt.Sprintf("%v", r.Primary()):  "new:[redacted]",
		fmt.Sprintf("%#v", r.Primary()): `config.Key{ID:"new", Secret:[redacted]}`,
		fmt.Sprintf("%v", r.Keys()):     "[new:[redacted] old:[redacted]]",
		mustJSON(t, r):                  `[{"id":"new","secret":"[redacted]"},{"id":"old","secret":"[redacted]"}]`,
		mustJSON(t, KeyRing{}):          `[]`,
		r.LogValue().String():           "new:[redacted],old:[redacted]",
		r.Primary().LogValue().String(): "new:[redacted]",
	}
	for got, want := range checks {
		if got != want {
			t.Errorf("got %s, want %s", got, want)
		}
	}
}

// keyRingError matches every message ParseKeyRing can produce: fixed text,
// entry numbers and well-formed ids only. Anything else in a message could be
// key material.
var keyRingError = regexp.MustCompile(`^(?:no keys: want keyid:base64key\[,keyid:base64key\.\.\.\]|` +
	`(?:` + keyProblem + `)(?:; (?:` + keyProblem + `))*)$`)

const keyProblem = `entry \d+ is empty|` +
	`entry \d+: want keyid:base64key|` +
	`entry \d+: key id must be 1 to 32 characters of A-Z, a-z, 0-9, _ and -|` +
	`entry \d+ \(id "[A-Za-z0-9_-]{1,32}"\): (?:id already used by entry \d+|` +
	`key is not valid base64; want base64 of 32 bytes, e\.g\. from openssl rand -base64 32|` +
	`key is \d+ bytes, want 32 \(AES-256\): base64 of 32 random bytes, e\.g\. from openssl rand -base64 32|` +
	`key looks like hex \(\d+ hex digits\); the key must be base64 of 32 bytes: convert it with echo KEY \| xxd -r -p \| base64, or make a new one with openssl rand -base64 32)`

var printedID = regexp.MustCompile(`entry (\d+) \(id "([A-Za-z0-9_-]{1,32})"\)`)

func FuzzParseKeyRing(f *testing.F) {
	_, k1 := testKey(1)
	_, k2 := testKey(2)
	for _, seed := range []string{
		"", "k1:" + k1, "new:" + k2 + ",old:" + k1, k1, k1 + ":k1", "k1:" + k1 + ",k1:" + k2,
		"k1:" + k1[:20], "a:b:c", ",,", " x : " + k1 + " ", "k1:" + k1 + "\n", "é:" + k1,
		"k1:" + strings.TrimRight(k1, "=") + "==", "k1:" + base64.RawURLEncoding.EncodeToString([]byte(strings.Repeat("?", 32))),
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ring, err := ParseKeyRing(s)
		if err != nil {
			msg := err.Error()
			// The message is made of fixed text, entry numbers and ids only.
			if !keyRingError.MatchString(msg) {
				t.Fatalf("unexpected error text for %q:\n%s", s, msg)
			}
			// Every id it prints is the id part of that entry: text before the
			// first colon, never the key after it.
			entries := strings.Split(s, ",")
			for _, m := range printedID.FindAllStringSubmatch(msg, -1) {
				n, _ := strconv.Atoi(m[1])
				if n < 1 || n > len(entries) {
					t.Fatalf("message names entry %d of %d: %s", n, len(entries), msg)
				}
				id, _, _ := strings.Cut(strings.TrimSpace(entries[n-1]), ":")
				if strings.TrimSpace(id) != m[2] {
					t.Fatalf("message prints id %q for entry %d, whose id part is %q", m[2], n, id)
				}
			}
			return
		}
		if ring.Len() == 0 {
			t.Fatalf("ParseKeyRing(%q) succeeded with no keys", s)
		}
		seen := make(map[string]bool)
		var parts []string
		for _, k := range ring.Keys() {
			if !validKeyID(k.ID) || seen[k.ID] {
				t.Fatalf("bad or duplicate id %q", k.ID)
			}
			seen[k.ID] = true
			if len(k.Secret) != KeySize {
				t.Fatalf("key %q is %d bytes", k.ID, len(k.Secret))
			}
			parts = append(parts, k.ID+":"+base64.StdEncoding.EncodeToString(k.Secret))
			for _, text := range []string{fmt.Sprintf("%v %+v %#v %s %x", ring, k, k, ring, ring), mustJSONf(t, ring)} {
				if strings.Contains(text, base64.RawStdEncoding.EncodeToString(k.Secret)) ||
					strings.Contains(text, fmt.Sprintf("%x", k.Secret)) {
					t.Fatalf("printing shows key material: %s", text)
				}
			}
		}
		if ring.Primary().ID != ring.IDs()[0] {
			t.Fatal("primary is not the first key")
		}
		again, err := ParseKeyRing(strings.Join(parts, ","))
		if err != nil || !again.Equal(ring) {
			t.Fatalf("round trip of %q failed: %v", s, err)
		}
	})
}

func mustJSONf(t *testing.T, v any) string {
	t.Helper()
	return mustJSON(t, v)
}
