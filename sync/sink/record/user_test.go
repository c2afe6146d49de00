package record_test

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/notionsync/notionsync/sync/sink/record"
)

func TestUserFromObject(t *testing.T) {
	u, err := record.UserFromObject(json.RawMessage(`{"object":"user","id":"A11CE0001111422283330000000000 01","type":"person"}`))
	if !errors.Is(err, record.ErrInvalidID) {
		t.Errorf("bad id: %v %+v", err, u)
	}
	u, err = record.UserFromObject(json.RawMessage(`{"object":"user","id":"A11CE000111142228333000000000001","type":"person","name":null,"avatar_url":null,"person":{}}`))
	if err != nil || u.ID != "a11ce000-1111-4222-8333-000000000001" || u.Name != "" || u.Email != "" || u.Type != "person" {
		t.Errorf("person without name or email: %+v %v", u, err)
	}
	u, err = record.UserFromObject(json.RawMessage(`{"object":"user","id":"a11ce000-1111-4222-8333-000000000001","type":"bot","name":"B","bot":{}}`))
	if err != nil || u.Name != "B" || u.Type != "bot" {
		t.Errorf("bot: %+v %v", u, err)
	}
	for _, bad := range []string{`[]`, `{"object":"page","id":"a11ce000-1111-4222-8333-000000000001"}`, `{"id":5}`, `{"id":"a11ce000-1111-4222-8333-000000000001","name":7}`} {
		if _, err := record.UserFromObject(json.RawMessage(bad)); !errors.Is(err, record.ErrInvalidObject) && !errors.Is(err, record.ErrInvalidID) {
			t.Errorf("%s: %v", bad, err)
		}
	}
}

// FuzzUserFromObject: any input gives a user with a normalized id or an
// ErrInvalidObject / ErrInvalidID error, never a panic.
func FuzzUserFromObject(f *testing.F) {
	f.Add([]byte(`{"object":"user","id":"a11ce000-1111-4222-8333-000000000001","type":"person","name":"A","person":{"email":"a@b"}}`))
	f.Add([]byte(`{"object":"user","id":"a11ce000111142228333000000000001","person":null}`))
	f.Add([]byte(`{"id":null}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		u, err := record.UserFromObject(data)
		if err != nil {
			if !errors.Is(err, record.ErrInvalidObject) && !errors.Is(err, record.ErrInvalidID) {
				t.Fatalf("unexpected error kind: %v", err)
			}
			return
		}
		if n, err := record.NormalizeID(u.ID); err != nil || n != u.ID {
			t.Fatalf("id %q not normalized", u.ID)
		}
	})
}
