// Package linkcheck follows the links of a folder of Markdown files (a file
// sink's connection folder) and reports those that lead nowhere. It is a
// test rig: the proof that a synced mirror can be browsed offline.
//
// Links are read with goldmark, the CommonMark parser the browser check
// renders with, so what counts as a link here is what a reader's viewer
// shows as one (inline links, images, autolinks), not a regular
// expression's guess.
package linkcheck

import (
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/yuin/goldmark"
	"github.com/yuin/goldmark/ast"
	"github.com/yuin/goldmark/extension"
	"github.com/yuin/goldmark/text"
)

// Link is one link of one Markdown file.
type Link struct {
	// File is the Markdown file, relative to the checked root.
	File string
	// Dest is the link destination as written.
	Dest string
}

// Report is what Check found.
type Report struct {
	// Files is the number of Markdown files read.
	Files int
	// Local are the links to files (relative paths), Broken those of them
	// whose target does not exist.
	Local, Broken []Link
	// External are links with a scheme (https:, mailto:, ...), not followed.
	External []Link
	// Targets is the set of files (relative to root, slash-separated) some
	// local link leads to.
	Targets map[string]bool
}

// Check reads every .md file under root and checks that each relative link
// (its path part: a #fragment or ?query is ignored) names an existing file.
// A link that leaves root counts as broken.
func Check(root string) (*Report, error) {
	r := &Report{Targets: make(map[string]bool)}
	md := goldmark.New(goldmark.WithExtensions(extension.GFM))
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || !strings.HasSuffix(path, ".md") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		r.Files++
		doc := md.Parser().Parse(text.NewReader(src))
		return ast.Walk(doc, func(n ast.Node, entering bool) (ast.WalkStatus, error) {
			if !entering {
				return ast.WalkContinue, nil
			}
			var dest string
			switch n := n.(type) {
			case *ast.Link:
				dest = string(n.Destination)
			case *ast.Image:
				dest = string(n.Destination)
			case *ast.AutoLink:
				dest = string(n.URL(src))
			default:
				return ast.WalkContinue, nil
			}
			r.add(root, filepath.ToSlash(rel), dest)
			return ast.WalkContinue, nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("linkcheck: %w", err)
	}
	return r, nil
}

func (r *Report) add(root, file, dest string) {
	l := Link{File: file, Dest: dest}
	u, err := url.Parse(dest)
	switch {
	case err != nil:
		r.Broken = append(r.Broken, l)
		return
	case u.Scheme != "" || u.Host != "":
		r.External = append(r.External, l)
		return
	case u.Path == "": // a fragment of the same file
		return
	}
	r.Local = append(r.Local, l)
	target := filepath.Join(filepath.Dir(filepath.Join(root, file)), filepath.FromSlash(u.Path))
	rel, err := filepath.Rel(root, target)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		r.Broken = append(r.Broken, l)
		return
	}
	if _, err := os.Stat(target); err != nil {
		r.Broken = append(r.Broken, l)
		return
	}
	r.Targets[filepath.ToSlash(rel)] = true
}

// Err returns an error listing the broken links (at most 20), or nil.
func (r *Report) Err() error {
	if len(r.Broken) == 0 {
		return nil
	}
	var lines []string
	for _, l := range r.Broken[:min(20, len(r.Broken))] {
		lines = append(lines, fmt.Sprintf("%s: %s", l.File, l.Dest))
	}
	slices.Sort(lines)
	return errors.New(fmt.Sprintf("linkcheck: %d of %d local links are broken:\n", len(r.Broken), len(r.Local)) + strings.Join(lines, "\n"))
}
