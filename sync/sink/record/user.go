package record

import (
	"encoding/json"
	"fmt"
	"time"
)

// User is one user of a workspace (a person or a bot) as GET /v1/users
// lists it. Pages, blocks and people values carry only users' ids (Notion
// sends partial users to an integration); names come from here.
type User struct {
	// ID is the Notion user id; sinks store the lowercase, dashed form.
	ID string
	// Type is "person" or "bot" (any other string is stored as is).
	Type string
	// Name is "" when Notion gave none (null).
	Name string
	// AvatarURL is "" when Notion gave none (null).
	AvatarURL string
	// Email is a person's email, "" when Notion gave none (the integration
	// lacks the user-email capability, or the user is a bot).
	Email string
	// Object is the user object exactly as Notion returned it (required).
	Object json.RawMessage
	// RemovedAt is set by a sink for a user stored by an earlier listing
	// and missing from a later one (left the workspace). The user is kept
	// so that old pages still resolve to a name. Ignored on write.
	RemovedAt time.Time
}

// Users is one complete listing of a connection's users (GET /v1/users,
// every page). A sink replaces the connection's users with it, unless it
// holds a listing synced later; users it held that the listing lacks are
// kept with RemovedAt set.
type Users struct {
	// ConnectionID identifies the connection, as for Page.
	ConnectionID string
	// Users are the listed users, in Notion's order.
	Users []User
	// SyncedAt is when the listing started (zero: the sink's now).
	SyncedAt time.Time
}

// userObject is the part of a user object UserFromObject reads.
type userObject struct {
	Object    string  `json:"object"`
	ID        string  `json:"id"`
	Type      string  `json:"type"`
	Name      *string `json:"name"`
	AvatarURL *string `json:"avatar_url"`
	Person    *struct {
		Email *string `json:"email"`
	} `json:"person"`
}

// UserFromObject builds a User from a user object as Notion returned it.
// Every member but id may be missing or null.
func UserFromObject(object json.RawMessage) (User, error) {
	if !IsJSONObject(object) {
		return User{}, fmt.Errorf("%w: user object is not a JSON object", ErrInvalidObject)
	}
	var o userObject
	if err := json.Unmarshal(object, &o); err != nil {
		return User{}, fmt.Errorf("%w: user object: %w", ErrInvalidObject, err)
	}
	if o.Object != "" && o.Object != "user" {
		return User{}, fmt.Errorf("%w: object %q is not a user", ErrInvalidObject, truncate(o.Object))
	}
	id, err := NormalizeID(o.ID)
	if err != nil {
		return User{}, fmt.Errorf("user id: %w", err)
	}
	u := User{ID: id, Type: o.Type, Object: object}
	if o.Name != nil {
		u.Name = *o.Name
	}
	if o.AvatarURL != nil {
		u.AvatarURL = *o.AvatarURL
	}
	if o.Person != nil && o.Person.Email != nil {
		u.Email = *o.Person.Email
	}
	return u, nil
}

// Normalized validates u and returns a copy with normalized ids, a SyncedAt
// (now when zero, NormalizeTime'd) and users de-duplicated by id (the last
// one wins, in the first one's place).
func (u *Users) Normalized(now time.Time) (Users, error) {
	if err := ValidateConnectionID(u.ConnectionID); err != nil {
		return Users{}, err
	}
	out := Users{ConnectionID: u.ConnectionID, SyncedAt: u.SyncedAt}
	if out.SyncedAt.IsZero() {
		out.SyncedAt = now
	}
	out.SyncedAt = NormalizeTime(out.SyncedAt)
	at := make(map[string]int, len(u.Users))
	for _, usr := range u.Users {
		id, err := NormalizeID(usr.ID)
		if err != nil {
			return Users{}, fmt.Errorf("user id: %w", err)
		}
		if !IsJSONObject(usr.Object) {
			return Users{}, fmt.Errorf("%w: user %s: object is not a JSON object", ErrInvalidObject, id)
		}
		usr.ID, usr.RemovedAt = id, time.Time{}
		if i, dup := at[id]; dup {
			out.Users[i] = usr
			continue
		}
		at[id] = len(out.Users)
		out.Users = append(out.Users, usr)
	}
	return out, nil
}

// UserNames maps user ids to names, for Markdown rendering: users without
// a name are left out (the renderer falls back to the id).
func UserNames(users []User) map[string]string {
	out := make(map[string]string, len(users))
	for _, u := range users {
		if u.Name != "" {
			out[u.ID] = u.Name
		}
	}
	return out
}
