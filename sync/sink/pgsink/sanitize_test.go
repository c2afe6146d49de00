package pgsink

import (
	"encoding/json"
	"testing"
)

func TestSanitizeJSON(t *testing.T) {
	tests := []struct{ in, want string }{
		{`{"a":"plain"}`, `{"a":"plain"}`},
		{`{"a":"x\u0000y"}`, `{"a":"x\ufffdy"}`},
		{`{"a\u0000":1}`, `{"a\ufffd":1}`},
		{`{"a":"\\u0000"}`, `{"a":"\\u0000"}`},           // escaped backslash: text, not NUL
		{`{"a":"\\\u0000"}`, `{"a":"\\\ufffd"}`},         // backslash, then NUL
		{`{"a":"\ud83d\ude00"}`, `{"a":"\ud83d\ude00"}`}, // surrogate pair kept
		{`{"a":"\ud83d"}`, `{"a":"\ufffd"}`},             // lone high
		{`{"a":"\ude00x"}`, `{"a":"\ufffdx"}`},           // lone low
		{`{"a":"\ud83d\u0041"}`, `{"a":"\ufffd\u0041"}`}, // high then non-low
		{`{"a":"\u00e9\"\u0000"}`, `{"a":"\u00e9\"\ufffd"}`},
		{"{\"a\":\"\xff\"}", "{\"a\":\"\uFFFD\"}"}, // invalid UTF-8
		{`["\u0000",1,"\n"]`, `["\ufffd",1,"\n"]`},
	}
	for _, tt := range tests {
		got := string(sanitizeJSON([]byte(tt.in)))
		if got != tt.want {
			t.Errorf("sanitizeJSON(%s) = %s, want %s", tt.in, got, tt.want)
		}
		if !json.Valid([]byte(got)) {
			t.Errorf("sanitizeJSON(%s) is not valid JSON", tt.in)
		}
	}
}

func TestSanitizeJSONNoCopyWhenClean(t *testing.T) {
	in := []byte(`{"a":"plain é"}`)
	if out := sanitizeJSON(in); &out[0] != &in[0] {
		t.Error("clean input was copied")
	}
}

func FuzzSanitizeJSON(f *testing.F) {
	f.Add(`{"a":"x\u0000y\ud800\\u0000"}`)
	f.Fuzz(func(t *testing.T, s string) {
		if !json.Valid([]byte(s)) {
			return
		}
		out := sanitizeJSON([]byte(s))
		if !json.Valid(out) {
			t.Fatalf("sanitizeJSON(%q) = %q: invalid JSON", s, out)
		}
		if string(sanitizeJSON(out)) != string(out) {
			t.Fatalf("not idempotent on %q", s)
		}
	})
}

func TestSanitizeText(t *testing.T) {
	if got := sanitizeText("a\x00b\xffc"); got != "a\uFFFDb\uFFFDc" {
		t.Errorf("got %q", got)
	}
	if got := sanitizeText("clean"); got != "clean" {
		t.Errorf("got %q", got)
	}
}
