package markdown

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/notionsync/notionsync/sync/sink/record"
)

// propertyValue is the union of the members of a Notion property value (and
// of a rollup array element, a formula result) that Render reads.
type propertyValue struct {
	Type        string          `json:"type"`
	Title       []richText      `json:"title"`
	RichText    []richText      `json:"rich_text"`
	Number      json.RawMessage `json:"number"`
	Select      *named          `json:"select"`
	Status      *named          `json:"status"`
	MultiSelect []named         `json:"multi_select"`
	Date        *dateValue      `json:"date"`
	People      []user          `json:"people"`
	Checkbox    bool            `json:"checkbox"`
	URL         *string         `json:"url"`
	Email       *string         `json:"email"`
	PhoneNumber *string         `json:"phone_number"`
	Relation    []struct {
		ID string `json:"id"`
	} `json:"relation"`
	HasMore        bool            `json:"has_more"`
	Formula        *propertyValue  `json:"formula"`
	Rollup         *propertyValue  `json:"rollup"`
	Array          []propertyValue `json:"array"`
	String         *string         `json:"string"`
	Boolean        *bool           `json:"boolean"`
	CreatedTime    string          `json:"created_time"`
	LastEditedTime string          `json:"last_edited_time"`
	CreatedBy      *user           `json:"created_by"`
	LastEditedBy   *user           `json:"last_edited_by"`
	Files          []struct {
		Name     string   `json:"name"`
		Type     string   `json:"type"`
		File     *fileRef `json:"file"`
		External *fileRef `json:"external"`
	} `json:"files"`
	UniqueID *struct {
		Prefix *string         `json:"prefix"`
		Number json.RawMessage `json:"number"`
	} `json:"unique_id"`
	Verification *struct {
		State string `json:"state"`
	} `json:"verification"`
}

type named struct {
	Name string `json:"name"`
}

type dateValue struct {
	Start    string  `json:"start"`
	End      *string `json:"end"`
	TimeZone *string `json:"time_zone"`
}

type user struct {
	ID     string `json:"id"`
	Name   string `json:"name"`
	Person *struct {
		Email string `json:"email"`
	} `json:"person"`
}

func (u *user) label() string {
	switch {
	case u == nil:
		return ""
	case u.Name != "":
		return u.Name
	case u.Person != nil && u.Person.Email != "":
		return u.Person.Email
	}
	return u.ID
}

// properties renders the property table rows (name, value) in Notion's
// order, skipping the title property, whose plain text it returns.
func (r *Renderer) properties(raw json.RawMessage) (rows [][2]string, title string, err error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return nil, "", nil
	}
	fields, err := record.ObjectFields(raw)
	if err != nil {
		return nil, "", fmt.Errorf("markdown: properties: %w", err)
	}
	for _, f := range fields {
		var v propertyValue
		if err := json.Unmarshal(f.Value, &v); err != nil {
			return nil, "", fmt.Errorf("markdown: property %q: %w", truncate(f.Key), err)
		}
		r.resolveValue(&v)
		if v.Type == "title" {
			if title == "" {
				title = plain(v.Title)
			}
			continue
		}
		name := escapeText(strings.ReplaceAll(f.Key, "\n", " "))
		rows = append(rows, [2]string{cell(name), cell(r.value(&v, 0))})
	}
	return rows, title, nil
}

// value renders one property value inline (no newlines).
func (r *Renderer) value(v *propertyValue, depth int) string {
	switch v.Type {
	case "title":
		return inline(v.Title, "<br>")
	case "rich_text":
		return inline(v.RichText, "<br>")
	case "number":
		return number(v.Number)
	case "select":
		return namedLabel(v.Select)
	case "status":
		return namedLabel(v.Status)
	case "multi_select":
		names := make([]string, len(v.MultiSelect))
		for i, n := range v.MultiSelect {
			names[i] = escapeText(n.Name)
		}
		return strings.Join(names, ", ")
	case "date":
		return date(v.Date)
	case "people":
		names := make([]string, len(v.People))
		for i := range v.People {
			names[i] = escapeText(r.userLabel(&v.People[i]))
		}
		return strings.Join(names, ", ")
	case "checkbox":
		if v.Checkbox {
			return "Yes"
		}
		return "No"
	case "url":
		if v.URL == nil || *v.URL == "" {
			return ""
		}
		return link(*v.URL, *v.URL)
	case "email":
		return optional(v.Email)
	case "phone_number":
		return optional(v.PhoneNumber)
	case "relation":
		links := make([]string, 0, len(v.Relation)+1)
		for _, rel := range v.Relation {
			links = append(links, r.pageLink("", "", rel.ID))
		}
		if v.HasMore {
			links = append(links, "…")
		}
		return strings.Join(links, ", ")
	case "formula":
		if v.Formula == nil || depth > 4 {
			return ""
		}
		return r.value(v.Formula, depth+1)
	case "rollup":
		if v.Rollup == nil || depth > 4 {
			return ""
		}
		return r.value(v.Rollup, depth+1)
	case "array":
		parts := make([]string, 0, len(v.Array))
		for i := range v.Array {
			if depth > 4 {
				break
			}
			if s := r.value(&v.Array[i], depth+1); s != "" {
				parts = append(parts, s)
			}
		}
		return strings.Join(parts, ", ")
	case "string":
		return optional(v.String)
	case "boolean":
		if v.Boolean == nil {
			return ""
		}
		if *v.Boolean {
			return "Yes"
		}
		return "No"
	case "created_time":
		return escapeText(readableTime(v.CreatedTime, ""))
	case "last_edited_time":
		return escapeText(readableTime(v.LastEditedTime, ""))
	case "created_by":
		return escapeText(r.userLabel(v.CreatedBy))
	case "last_edited_by":
		return escapeText(r.userLabel(v.LastEditedBy))
	case "files":
		links := make([]string, len(v.Files))
		for i, f := range v.Files {
			u := ""
			switch {
			case f.File != nil:
				u = f.File.URL
			case f.External != nil:
				u = f.External.URL
			}
			links[i] = link(orUntitled(f.Name), u)
		}
		return strings.Join(links, ", ")
	case "unique_id":
		if v.UniqueID == nil {
			return ""
		}
		n := number(v.UniqueID.Number)
		if v.UniqueID.Prefix != nil && *v.UniqueID.Prefix != "" {
			return escapeText(*v.UniqueID.Prefix) + "-" + n
		}
		return n
	case "verification":
		if v.Verification == nil {
			return ""
		}
		return escapeText(v.Verification.State)
	}
	return "" // button, incomplete, unsupported and types added after this code
}

func namedLabel(n *named) string {
	if n == nil {
		return ""
	}
	return escapeText(n.Name)
}

func optional(s *string) string {
	if s == nil {
		return ""
	}
	return escapeText(strings.ReplaceAll(*s, "\n", " "))
}

// number renders a JSON number as written; anything else (null) as "".
func number(raw json.RawMessage) string {
	var n json.Number
	if len(raw) == 0 || json.Unmarshal(raw, &n) != nil {
		return ""
	}
	return n.String()
}

func date(d *dateValue) string {
	if d == nil || d.Start == "" {
		return ""
	}
	return escapeText(readableDate(d))
}
