package notionfake

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
)

// This file serves the workspace's users (shapes from @notionhq/client 5.x,
// build/src/api-endpoints/users.d.ts and common.d.ts UserObjectResponse):
//
//	GET /v1/users        paginated (start_cursor, page_size up to 100)
//	GET /v1/users/{id}
//
// Every workspace has its owner (a person, "Fake User", the one the OAuth
// token response names) and the integration's bot; AddUser and
// SeedSpec.Users add more. Pages, blocks and people values reference users
// as partial users ({"object":"user","id":...}), as Notion does for an
// integration that may not read user information: the names come from the
// users list only.

// UserType is a user's type.
type UserType string

// User types.
const (
	UserPerson UserType = "person"
	UserBot    UserType = "bot"
)

// User is a workspace member or bot.
type User struct {
	// ID is a dashed UUID; AddUser assigns one when empty.
	ID   string
	Type UserType
	// Name is rendered as null when empty (Notion's name is string|null).
	Name string
	// AvatarURL is rendered as null when empty.
	AvatarURL string
	// Email of a person; empty renders "person": {} (an integration without
	// the user-email capability sees no email).
	Email string
}

// ownerName and ownerEmail are the workspace owner's, as the OAuth token
// response names them.
const (
	ownerName  = "Fake User"
	ownerEmail = "fake.user@example.com"
	botName    = "notionsync"
)

// AddUser adds a user to workspace workspaceID (created if needed) and
// returns it with its id. A user with an id already in the workspace
// replaces it.
func (s *Server) AddUser(workspaceID string, u User) (User, error) {
	if u.Type != UserPerson && u.Type != UserBot {
		return User{}, fmt.Errorf("notionfake: user type %q (want person or bot)", u.Type)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.wsDataLocked(workspaceID)
	if u.ID == "" {
		u.ID = newUUID()
	}
	d.putUser(u)
	return u, nil
}

func (d *wsData) putUser(u User) {
	for i := range d.users {
		if d.users[i].ID == u.ID {
			d.users[i] = u
			return
		}
	}
	d.users = append(d.users, u)
}

// Users returns the users of workspace workspaceID as GET /v1/users lists
// them: the owner, the added users in order, the integration's bot.
func (s *Server) Users(workspaceID string) ([]User, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, err := s.lookupWSLocked(workspaceID)
	if err != nil {
		return nil, err
	}
	return s.usersLocked(d), nil
}

func (s *Server) usersLocked(d *wsData) []User {
	out := []User{{ID: d.owner, Type: UserPerson, Name: ownerName, Email: ownerEmail}}
	out = append(out, d.users...)
	if ws, ok := s.workspaces[d.id]; ok && ws.botID != "" {
		out = append(out, User{ID: ws.botID, Type: UserBot, Name: botName})
	}
	return out
}

// renderUser is Notion's user object.
func (s *Server) renderUser(d *wsData, u User) map[string]any {
	out := map[string]any{"object": "user", "id": u.ID, "type": string(u.Type), "name": nil, "avatar_url": nil}
	if u.Name != "" {
		out["name"] = u.Name
	}
	if u.AvatarURL != "" {
		out["avatar_url"] = u.AvatarURL
	}
	switch u.Type {
	case UserBot:
		bot := map[string]any{}
		if ws, ok := s.workspaces[d.id]; ok && u.ID == ws.botID {
			// The integration's own bot carries its owner and workspace
			// (BotInfoResponse); other bots answer an empty object.
			bot = map[string]any{
				"owner":            map[string]any{"type": "user", "user": map[string]any{"object": "user", "id": d.owner}},
				"workspace_id":     d.id,
				"workspace_name":   ws.name,
				"workspace_limits": map[string]any{"max_file_upload_size_in_bytes": 5 << 20},
			}
		}
		out["bot"] = bot
	default:
		person := map[string]any{}
		if u.Email != "" {
			person["email"] = u.Email
		}
		out["person"] = person
	}
	return out
}

// listUsers serves GET /v1/users.
func (s *Server) listUsers(req *dataRequest) (any, *apiError) {
	cursor, size, aerr := req.queryPagination()
	if aerr != nil {
		return nil, aerr
	}
	page, next, aerr := paginate(s.usersLocked(req.ws), func(u User) string { return u.ID }, cursor, size)
	if aerr != nil {
		return nil, aerr
	}
	results := make([]any, len(page))
	for i, u := range page {
		results[i] = s.renderUser(req.ws, u)
	}
	l := map[string]any{"object": "list", "type": "user", "user": map[string]any{},
		"results": results, "next_cursor": nil, "has_more": false, "request_id": req.id}
	if next != "" {
		l["next_cursor"], l["has_more"] = next, true
	}
	return l, nil
}

// getUser serves GET /v1/users/{id}.
func (s *Server) getUser(req *dataRequest) (any, *apiError) {
	id := strings.ToLower(req.r.PathValue("id"))
	for _, u := range s.usersLocked(req.ws) {
		if u.ID == id || strings.ReplaceAll(u.ID, "-", "") == id {
			return s.renderUser(req.ws, u), nil
		}
	}
	return nil, &apiError{status: http.StatusNotFound, code: "object_not_found",
		message: fmt.Sprintf("Could not find user with ID: %s.", id)}
}

// userRefFor is the partial user Notion puts in created_by, last_edited_by
// and people values: id is the user, "" the workspace owner.
func (d *wsData) userRefFor(id string) userRef {
	if id == "" {
		id = d.owner
	}
	return userRef{Object: "user", ID: id}
}

// MentionUser returns a rich text item mentioning user u, in the shape
// Notion returns (plain_text "@Name").
func MentionUser(u User) map[string]any {
	return map[string]any{
		"type":    "mention",
		"mention": map[string]any{"type": "user", "user": map[string]any{"object": "user", "id": u.ID}},
		"annotations": map[string]any{
			"bold": false, "italic": false, "strikethrough": false,
			"underline": false, "code": false, "color": "default",
		},
		"plain_text": "@" + u.Name,
		"href":       nil,
	}
}

// seedUsers adds n people and a bot (SeedSpec.Users) and makes the seeded
// pages and rows reference the people. It draws nothing from g.rng.
func (g *seedGen) seedUsers(n int) {
	people := make([]User, n)
	for i := range people {
		u := User{
			ID:   derivedUUID(fmt.Sprintf("%s/seed-user/%d", g.d.id, i)),
			Type: UserPerson,
			Name: fmt.Sprintf("Person %d %s", i+1, lorem[i%len(lorem)]),
		}
		if i%3 != 2 {
			u.Email = fmt.Sprintf("person%d@example.com", i+1)
		}
		if i%2 == 0 {
			u.AvatarURL = fmt.Sprintf("https://example.com/avatars/%d.png", i+1)
		}
		people[i] = u
		g.d.putUser(u)
		g.res.UserIDs = append(g.res.UserIDs, u.ID)
	}
	bot := User{ID: derivedUUID(g.d.id + "/seed-bot"), Type: UserBot, Name: "Other integration"}
	g.d.putUser(bot)
	g.res.UserIDs = append(g.res.UserIDs, bot.ID)
	ids := append(slices.Clone(g.res.PageIDs), g.res.RowIDs...)
	for i, id := range ids {
		p := g.d.pages[id]
		creator := people[i%n]
		p.CreatedBy, p.LastEditedBy = creator.ID, people[(i+1)%n].ID
		if db := g.d.rowDatabase(p); db != nil {
			for _, ps := range db.schema {
				// Rows of SeedSpec.ManyReferenceRows keep their long lists.
				if cur, _ := p.Properties[ps.name].([]any); ps.typ == "people" && len(cur) <= 1 {
					p.Properties[ps.name] = []any{map[string]any{"object": "user", "id": creator.ID}}
				}
			}
		}
		mention := NewBlock("paragraph", map[string]any{
			"rich_text": append(RichText("Created by "), MentionUser(creator)),
			"color":     "default",
		})
		mention.ID = derivedUUID(g.d.id + "/mention/" + p.ID)
		mention.CreatedTime, mention.LastEditedTime = p.CreatedTime, p.CreatedTime
		p.Blocks = append(p.Blocks, mention)
	}
}
