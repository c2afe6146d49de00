package notionfake

import (
	"net/http"
	"testing"
)

func TestListAndGetUsers(t *testing.T) {
	h := newDataHarness(t, SeedSpec{Seed: 7, Pages: 2, Databases: 1, RowsPerDatabase: 2, Users: 4})
	if len(h.seed.UserIDs) != 5 {
		t.Fatalf("seeded %d users, want 4 people and a bot", len(h.seed.UserIDs))
	}
	// Page through the list two at a time.
	var users []map[string]any
	cursor, calls := "", 0
	for {
		path := "/v1/users?page_size=2"
		if cursor != "" {
			path += "&start_cursor=" + cursor
		}
		r := h.raw(http.MethodGet, path, nil)
		calls++
		if r.status != http.StatusOK {
			t.Fatalf("GET %s: %d %s", path, r.status, r.body)
		}
		l := r.json(t)
		if l["object"] != "list" || l["type"] != "user" {
			t.Fatalf("list shape: %v", l)
		}
		for _, u := range l["results"].([]any) {
			users = append(users, u.(map[string]any))
		}
		if l["has_more"] != true {
			break
		}
		cursor = l["next_cursor"].(string)
	}
	// Owner, 4 people, the other bot, the integration's bot.
	if len(users) != 7 || calls != 4 {
		t.Fatalf("listed %d users in %d calls, want 7 in 4", len(users), calls)
	}
	byID := map[string]map[string]any{}
	for _, u := range users {
		byID[u["id"].(string)] = u
		if u["object"] != "user" {
			t.Errorf("user %v: object %v", u["id"], u["object"])
		}
	}
	if byID[h.s.mustOwner(t, h.ws)]["name"] != ownerName {
		t.Errorf("owner missing or misnamed: %v", users[0])
	}
	noEmail := byID[h.seed.UserIDs[2]] // every third person has no email
	if p, ok := noEmail["person"].(map[string]any); !ok || len(p) != 0 {
		t.Errorf("person without email renders %v, want person: {}", noEmail["person"])
	}
	if p := byID[h.seed.UserIDs[0]]["person"].(map[string]any); p["email"] != "person1@example.com" {
		t.Errorf("person 1 email: %v", p)
	}
	if byID[h.seed.UserIDs[1]]["avatar_url"] != nil {
		t.Errorf("person 2 avatar_url %v, want null", byID[h.seed.UserIDs[1]]["avatar_url"])
	}
	bot := byID[h.seed.UserIDs[4]]
	if bot["type"] != "bot" || bot["bot"] == nil {
		t.Errorf("bot: %v", bot)
	}

	// GET one, with and without dashes; unknown ids answer 404.
	r := h.raw(http.MethodGet, "/v1/users/"+h.seed.UserIDs[0], nil)
	if r.status != http.StatusOK || r.json(t)["name"] != byID[h.seed.UserIDs[0]]["name"] {
		t.Fatalf("GET user: %d %s", r.status, r.body)
	}
	if r := h.raw(http.MethodGet, "/v1/users/"+"00000000-0000-4000-8000-000000000000", nil); r.status != http.StatusNotFound {
		t.Fatalf("unknown user: %d", r.status)
	}

	// Pages reference the seeded people: created_by, people values, a
	// mention.
	row := h.raw(http.MethodGet, "/v1/pages/"+h.seed.RowIDs[0], nil).json(t)
	creator := row["created_by"].(map[string]any)["id"].(string)
	if byID[creator] == nil || creator == h.s.mustOwner(t, h.ws) {
		t.Fatalf("row created_by %s is not a seeded person", creator)
	}
	people := row["properties"].(map[string]any)["Owner"].(map[string]any)["people"].([]any)
	if len(people) != 1 || people[0].(map[string]any)["id"] != creator {
		t.Fatalf("row people value %v, want its creator %s", people, creator)
	}
	kids := h.raw(http.MethodGet, "/v1/blocks/"+h.seed.RowIDs[0]+"/children", nil).json(t)["results"].([]any)
	last := kids[len(kids)-1].(map[string]any)["paragraph"].(map[string]any)["rich_text"].([]any)
	m := last[len(last)-1].(map[string]any)
	if m["type"] != "mention" || m["mention"].(map[string]any)["user"].(map[string]any)["id"] != creator {
		t.Fatalf("last block's mention: %v", m)
	}
}

func (s *Server) mustOwner(t *testing.T, ws string) string {
	t.Helper()
	us, err := s.Users(ws)
	if err != nil {
		t.Fatal(err)
	}
	return us[0].ID
}
