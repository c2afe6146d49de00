// Package markdown renders a Notion page (title, properties and block tree,
// all as the raw JSON Notion returned) to GitHub-flavoured Markdown.
//
// It owns only the rendering: it reads the fields it needs from the raw JSON
// with small local structs, so block and property types it does not know
// never break it (unknown blocks become `<!-- unsupported block: TYPE -->`,
// unknown property types an empty cell). Input that is not the JSON shape
// Notion documents (a rich_text that is not an array, invalid JSON, ...) is
// reported as an error; Render never panics.
//
// Conventions of the output:
//   - The page title is the only level-1 heading; Notion's heading_1/2/3
//     become ##, ###, ####.
//   - Properties become a two-column table (the title property is the
//     heading and is not repeated).
//   - Toggles become <details>; callouts and quotes blockquotes; columns are
//     rendered one after the other; children of paragraphs and headings
//     follow them unindented; list children are nested.
//   - Line breaks inside a text become hard breaks ("\" at the end of a
//     line), inside table cells <br>. NUL characters become U+FFFD.
//
// Renderer is a value with no mutable state: one Renderer may be used by any
// number of goroutines at once.
package markdown
