package ctl

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"

	"github.com/notionsync/notionsync/internal/control"
)

// maxPairInput bounds the token pair input (the server takes 64 KiB).
const maxPairInput = 64 << 10

func setupImport(fs *flag.FlagSet) runFunc {
	id := fs.String("id", "", "store the pair under this connection `ID` (required)")
	file := fs.String("file", "", "read the token pair from `FILE` instead of stdin (\"-\" is stdin)")
	replace := fs.Bool("replace", false, "replace the tokens of an existing active or paused connection")
	meta := map[string]string{}
	fs.Func("meta", "store `key=value` with the connection (repeatable; never a secret)", func(v string) error {
		k, val, ok := strings.Cut(v, "=")
		if !ok || k == "" {
			return errors.New("must be key=value")
		}
		meta[k] = val
		return nil
	})
	return func(ctx context.Context, r *runner, args []string) error {
		if len(args) != 0 {
			return usagef(r.cmd, "import takes no arguments: the token pair is read as JSON from stdin or -file, never from the command line")
		}
		if *id == "" {
			return usagef(r.cmd, "-id is required")
		}
		if err := checkID(r.cmd, *id); err != nil {
			return err
		}
		if err := r.requireToken(); err != nil {
			return err
		}
		data, err := r.readPair(ctx, *file)
		if err != nil {
			return err
		}
		p, err := parsePair(data)
		if err != nil {
			return usagef(r.cmd, "%v", err)
		}
		req := control.ImportRequest{ConnectionID: *id, AccessToken: p.accessToken, RefreshToken: p.refreshToken,
			ExpiresIn: p.expiresIn, Meta: p.meta}
		for k, v := range meta {
			if req.Meta == nil {
				req.Meta = map[string]string{}
			}
			req.Meta[k] = v
		}
		body, err := json.Marshal(req)
		if err != nil {
			return fmt.Errorf("encoding the import request failed") // never quote it: it holds the tokens
		}
		var q url.Values
		if *replace {
			q = url.Values{"replace": {"1"}}
		}
		ctx, cancel := r.withTimeout(ctx, DefaultTimeout)
		defer cancel()
		var c connection
		raw, err := r.getJSON(ctx, http.MethodPost, "/connections/import", q, body, &c)
		if err != nil {
			return err
		}
		if r.jsonOutput() {
			return r.printJSON(raw) // the connection's view: no secret
		}
		r.outf("%s: imported (status %s; access token expires %s)\n", *id, cell(string(c.Status)), relative(c.AccessExpiresAt, r.env.Now()))
		return nil
	}
}

// readPair reads the token pair input from file, or from stdin when file
// is "" or "-". Reading stdin is abandoned when ctx ends.
func (r *runner) readPair(ctx context.Context, file string) ([]byte, error) {
	if file != "" && file != "-" {
		f, err := os.Open(file)
		if err != nil {
			return nil, usagef(r.cmd, "cannot read the token pair: %v", err)
		}
		defer f.Close()
		data, err := io.ReadAll(io.LimitReader(f, maxPairInput+1))
		if err != nil {
			return nil, usagef(r.cmd, "cannot read the token pair from %s: %v", file, err)
		}
		return checkPairSize(r.cmd, data)
	}
	if r.env.StdinIsTerminal {
		r.errf("Paste the token pair as JSON ({\"access_token\": ..., \"refresh_token\": ..., \"expires_in\": ...}),\n" +
			"then press Ctrl-D. (Prefer a pipe or -file: a terminal may keep what is pasted.)\n")
	}
	type result struct {
		data []byte
		err  error
	}
	ch := make(chan result, 1)
	go func() {
		data, err := io.ReadAll(io.LimitReader(r.env.Stdin, maxPairInput+1))
		ch <- result{data, err}
	}()
	select {
	case <-ctx.Done():
		return nil, errors.New("interrupted")
	case res := <-ch:
		if res.err != nil {
			return nil, usagef(r.cmd, "cannot read the token pair from stdin: %v", res.err)
		}
		return checkPairSize(r.cmd, res.data)
	}
}

func checkPairSize(cmd string, data []byte) ([]byte, error) {
	if len(data) > maxPairInput {
		return nil, usagef(cmd, "the token pair input is larger than %d bytes", maxPairInput)
	}
	return data, nil
}

// tokenPair is a parsed token pair input.
type tokenPair struct {
	accessToken, refreshToken string
	expiresIn                 int64
	meta                      map[string]string
}

// parsePair parses the token pair input. Its errors name fields, never
// values: the input is secret.
func parsePair(data []byte) (tokenPair, error) {
	var p tokenPair
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	if len(bytes.TrimSpace(data)) == 0 {
		return p, errors.New("no token pair: the input is empty")
	}
	var in struct {
		AccessToken   string          `json:"access_token"`
		RefreshToken  string          `json:"refresh_token"`
		ExpiresIn     json.RawMessage `json:"expires_in"`
		WorkspaceID   string          `json:"workspace_id"`
		WorkspaceName string          `json:"workspace_name"`
		BotID         string          `json:"bot_id"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&in); err != nil {
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &se):
			return p, fmt.Errorf("the token pair is not valid JSON (syntax error at byte %d)", se.Offset)
		case errors.As(err, &te) && te.Field != "":
			return p, fmt.Errorf("field %q of the token pair has the wrong type (%s, want %s)", te.Field, te.Value, te.Type)
		default:
			return p, errors.New("the token pair must be a JSON object")
		}
	}
	if _, err := dec.Token(); err != io.EOF {
		return p, errors.New("the token pair input must hold one JSON object and nothing else")
	}
	p.accessToken = strings.TrimSpace(in.AccessToken)
	p.refreshToken = strings.TrimSpace(in.RefreshToken)
	switch {
	case p.accessToken == "":
		return p, errors.New("access_token is missing from the token pair")
	case p.refreshToken == "":
		return p, errors.New("refresh_token is missing from the token pair (without it the connection dies when the access token expires)")
	}
	n, err := parseExpiresIn(in.ExpiresIn)
	if err != nil {
		return p, err
	}
	p.expiresIn = n
	for k, v := range map[string]string{control.MetaWorkspaceID: in.WorkspaceID,
		control.MetaWorkspaceName: in.WorkspaceName, control.MetaBotID: in.BotID} {
		if v != "" {
			if p.meta == nil {
				p.meta = map[string]string{}
			}
			p.meta[k] = v
		}
	}
	return p, nil
}

// parseExpiresIn accepts a whole number of seconds (also written as "3600"
// or 3600.0); absent or null is 0 (the server's configured lifetime).
func parseExpiresIn(raw json.RawMessage) (int64, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return 0, nil
	}
	s := string(raw)
	if uq, err := strconv.Unquote(s); err == nil && raw[0] == '"' {
		s = uq
	}
	bad := errors.New("expires_in must be a whole, non-negative number of seconds")
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		if n < 0 {
			return 0, bad
		}
		return n, nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f < 0 || f != math.Trunc(f) || f > math.MaxInt32 {
		return 0, bad
	}
	return int64(f), nil
}
