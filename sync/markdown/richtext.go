package markdown

import (
	"net/url"
	"strings"
)

// richText is one element of a Notion rich text array.
type richText struct {
	Type        string      `json:"type"`
	PlainText   string      `json:"plain_text"`
	Href        *string     `json:"href"`
	Annotations annotations `json:"annotations"`
	Text        *struct {
		Content string `json:"content"`
		Link    *struct {
			URL string `json:"url"`
		} `json:"link"`
	} `json:"text"`
	Equation *struct {
		Expression string `json:"expression"`
	} `json:"equation"`
	Mention *mention `json:"mention"`
}

type annotations struct {
	Bold          bool `json:"bold"`
	Italic        bool `json:"italic"`
	Strikethrough bool `json:"strikethrough"`
	Underline     bool `json:"underline"`
	Code          bool `json:"code"`
}

// span is a run of text with one set of annotations and one link.
type span struct {
	text     string
	ann      annotations
	link     string
	equation bool
}

func (rt *richText) span() span {
	if rt.Type == "equation" && rt.Equation != nil {
		return span{text: rt.Equation.Expression, equation: true}
	}
	s := span{text: rt.PlainText, ann: rt.Annotations}
	if s.text == "" && rt.Text != nil {
		s.text = rt.Text.Content
	}
	switch {
	case rt.Text != nil && rt.Text.Link != nil && rt.Text.Link.URL != "":
		s.link = rt.Text.Link.URL
	case rt.Href != nil:
		s.link = *rt.Href
	}
	return s
}

// plain returns the concatenated plain text of a rich text array.
func plain(rts []richText) string {
	var b strings.Builder
	for i := range rts {
		b.WriteString(rts[i].span().text)
	}
	return b.String()
}

// inlineLines renders a rich text array as Markdown, one string per line of
// the text (Notion's soft line breaks split lines). Annotations never span
// lines, so the caller may join the lines with any kind of break.
func inlineLines(rts []richText) []string {
	// Split every span at newlines, merging neighbours that look alike.
	lines := [][]span{nil}
	for i := range rts {
		sp := rts[i].span()
		if sp.equation {
			last := &lines[len(lines)-1]
			*last = append(*last, sp)
			continue
		}
		parts := strings.Split(sp.text, "\n")
		for j, part := range parts {
			if j > 0 {
				lines = append(lines, nil)
			}
			if part == "" {
				continue
			}
			last := &lines[len(lines)-1]
			if n := len(*last); n > 0 && !(*last)[n-1].equation && (*last)[n-1].ann == sp.ann && (*last)[n-1].link == sp.link {
				(*last)[n-1].text += part
				continue
			}
			*last = append(*last, span{text: part, ann: sp.ann, link: sp.link})
		}
	}
	out := make([]string, len(lines))
	for i, spans := range lines {
		var b strings.Builder
		for _, sp := range spans {
			b.WriteString(renderSpan(sp))
		}
		out[i] = escapeLineStart(b.String())
	}
	return out
}

// inline renders a rich text array on one line, joining its lines with sep.
func inline(rts []richText, sep string) string {
	return strings.Join(inlineLines(rts), sep)
}

func renderSpan(sp span) string {
	if sp.equation {
		return "$" + strings.ReplaceAll(sp.text, "$", `\$`) + "$"
	}
	var core string
	if sp.ann.Code {
		core = codeSpan(sp.text)
	} else {
		core = escapeText(sp.text)
	}
	// Emphasis markers must touch non-space text: keep outer spaces outside.
	lead, body, trail := splitSpace(core)
	if body != "" {
		if sp.ann.Underline {
			body = "<u>" + body + "</u>"
		}
		if sp.ann.Strikethrough {
			body = "~~" + body + "~~"
		}
		if sp.ann.Italic {
			body = "*" + body + "*"
		}
		if sp.ann.Bold {
			body = "**" + body + "**"
		}
		if sp.link != "" {
			body = "[" + body + "](" + linkTarget(sp.link) + ")"
		}
	}
	return lead + body + trail
}

func splitSpace(s string) (lead, body, trail string) {
	t := strings.TrimLeft(s, " \t")
	lead = s[:len(s)-len(t)]
	body = strings.TrimRight(t, " \t")
	trail = t[len(body):]
	return lead, body, trail
}

// codeSpan wraps s in enough backticks to hold the backticks it contains.
func codeSpan(s string) string {
	if s == "" {
		return ""
	}
	fence := strings.Repeat("`", longestRun(s, '`')+1)
	if strings.HasPrefix(s, "`") || strings.HasSuffix(s, "`") {
		return fence + " " + s + " " + fence
	}
	return fence + s + fence
}

func longestRun(s string, c byte) int {
	best, cur := 0, 0
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			cur++
			best = max(best, cur)
		} else {
			cur = 0
		}
	}
	return best
}

// escapeText escapes the characters that would otherwise start Markdown
// syntax inside a line.
func escapeText(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case '\\', '`', '*', '_', '[', ']', '<', '>', '~', '|':
			b.WriteByte('\\')
			b.WriteByte(c)
		case 0:
			b.WriteString("\uFFFD")
		case '\t':
			b.WriteByte(' ')
		case '\r':
			// dropped: Notion line breaks are \n
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// escapeLineStart neutralizes what would make a rendered line a heading,
// list item, thematic break or indented code block.
func escapeLineStart(line string) string {
	// Leading spaces (4 would start a code block) become non-breaking spaces.
	trimmed := strings.TrimLeft(line, " ")
	if n := len(line) - len(trimmed); n > 0 {
		line = strings.Repeat("&nbsp;", n) + trimmed
		return line
	}
	if line == "" {
		return line
	}
	switch line[0] {
	case '#', '-', '+', '=':
		return `\` + line
	}
	// "12." or "12)" starts an ordered list.
	i := 0
	for i < len(line) && i < 9 && line[i] >= '0' && line[i] <= '9' {
		i++
	}
	if i > 0 && i < len(line) && (line[i] == '.' || line[i] == ')') {
		return line[:i] + `\` + line[i:]
	}
	return line
}

// linkTarget makes a URL safe inside (...) of a Markdown link.
func linkTarget(u string) string {
	var b strings.Builder
	for _, r := range u {
		switch r {
		case ' ':
			b.WriteString("%20")
		case '(':
			b.WriteString("%28")
		case ')':
			b.WriteString("%29")
		case '<':
			b.WriteString("%3C")
		case '>':
			b.WriteString("%3E")
		case '|':
			b.WriteString("%7C")
		case '\n', '\r', '\t', 0:
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// notionURL is the default link of a page or database id.
func notionURL(id string) string {
	return "https://www.notion.so/" + url.PathEscape(strings.ReplaceAll(id, "-", ""))
}

// htmlEscape escapes text placed inside HTML (summary of a toggle).
func htmlEscape(s string) string {
	r := strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", "\"", "&quot;", "\x00", "\uFFFD", "\n", " ")
	return r.Replace(s)
}
