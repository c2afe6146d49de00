package record

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// Field is one member of a JSON object, in document order.
type Field struct {
	Key   string
	Value json.RawMessage
}

// IsJSONObject reports whether data is a syntactically valid JSON object.
func IsJSONObject(data []byte) bool {
	t := bytes.TrimLeft(data, " \t\r\n")
	return len(t) > 0 && t[0] == '{' && json.Valid(data)
}

// ObjectFields splits a JSON object into its members, keeping their order
// and their values' bytes exactly. It fails with ErrInvalidObject when data
// is not a single JSON object.
func ObjectFields(data []byte) ([]Field, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	tok, err := dec.Token()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidObject, err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, fmt.Errorf("%w: not a JSON object", ErrInvalidObject)
	}
	var fields []Field
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrInvalidObject, err)
		}
		key, ok := tok.(string)
		if !ok {
			return nil, fmt.Errorf("%w: object key is not a string", ErrInvalidObject)
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, fmt.Errorf("%w: member %q: %v", ErrInvalidObject, truncate(key), err)
		}
		fields = append(fields, Field{Key: key, Value: v})
	}
	if _, err := dec.Token(); err != nil { // the closing '}'
		return nil, fmt.Errorf("%w: %v", ErrInvalidObject, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: trailing data after JSON object", ErrInvalidObject)
	}
	return fields, nil
}

// Lookup returns the value of the first member named key, or nil.
func Lookup(fields []Field, key string) json.RawMessage {
	for _, f := range fields {
		if f.Key == key {
			return f.Value
		}
	}
	return nil
}

// AppendObject appends a JSON object made of fields to dst. Values must be
// valid JSON (they are copied verbatim).
func AppendObject(dst []byte, fields []Field) []byte {
	dst = append(dst, '{')
	for i, f := range fields {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendString(dst, f.Key)
		dst = append(dst, ':')
		dst = append(dst, f.Value...)
	}
	return append(dst, '}')
}

func appendString(dst []byte, s string) []byte {
	b, _ := json.Marshal(s) // marshaling a string cannot fail
	return append(dst, b...)
}

// AppendBlocks appends the block tree as a JSON array to dst. Each block is
// written as its Raw object (a minimal object when Raw is empty) with an
// added top-level "children" array when it has children. Raw objects must
// not be otherwise altered, so a top-level "children" member already in Raw
// is dropped.
func AppendBlocks(dst []byte, blocks []Block) ([]byte, error) {
	dst = append(dst, '[')
	for i := range blocks {
		if i > 0 {
			dst = append(dst, ',')
		}
		var err error
		if dst, err = appendBlock(dst, &blocks[i]); err != nil {
			return nil, err
		}
	}
	return append(dst, ']'), nil
}

var childrenKey = []byte(`"children"`)

func appendBlock(dst []byte, b *Block) ([]byte, error) {
	raw := bytes.TrimSpace(b.Raw)
	if len(raw) == 0 {
		synth, err := json.Marshal(struct {
			Object      string `json:"object"`
			ID          string `json:"id"`
			Type        string `json:"type"`
			HasChildren bool   `json:"has_children"`
		}{"block", b.ID, b.Type, b.HasChildren || len(b.Children) > 0})
		if err != nil {
			return nil, fmt.Errorf("%w: block %q: %v", ErrInvalidObject, truncate(b.ID), err)
		}
		raw = synth
	} else if !IsJSONObject(raw) {
		return nil, fmt.Errorf("%w: block %q: Raw is not a JSON object", ErrInvalidObject, truncate(b.ID))
	}
	if bytes.Contains(raw, childrenKey) {
		// Slow path: drop a top-level "children" member, if any.
		fields, err := ObjectFields(raw)
		if err != nil {
			return nil, fmt.Errorf("block %q: %w", truncate(b.ID), err)
		}
		kept := fields[:0:0]
		for _, f := range fields {
			if f.Key != "children" {
				kept = append(kept, f)
			}
		}
		raw = AppendObject(nil, kept)
	}
	if len(b.Children) == 0 {
		return append(dst, raw...), nil
	}
	body := raw[:len(raw)-1] // without the closing '}'
	dst = append(dst, body...)
	if len(bytes.TrimSpace(body)) > 1 { // not an empty object
		dst = append(dst, ',')
	}
	dst = append(dst, `"children":`...)
	dst, err := AppendBlocks(dst, b.Children)
	if err != nil {
		return nil, err
	}
	return append(dst, '}'), nil
}

// DecodeBlocks parses a block tree written by AppendBlocks. JSON null or
// empty input yields nil.
func DecodeBlocks(data []byte) ([]Block, error) {
	data = bytes.TrimSpace(data)
	if len(data) == 0 || bytes.Equal(data, []byte("null")) {
		return nil, nil
	}
	var elems []json.RawMessage
	if err := json.Unmarshal(data, &elems); err != nil {
		return nil, fmt.Errorf("%w: blocks: %v", ErrInvalidObject, err)
	}
	if len(elems) == 0 {
		return nil, nil
	}
	out := make([]Block, len(elems))
	for i, e := range elems {
		b, err := decodeBlock(e)
		if err != nil {
			return nil, err
		}
		out[i] = b
	}
	return out, nil
}

func decodeBlock(data json.RawMessage) (Block, error) {
	fields, err := ObjectFields(data)
	if err != nil {
		return Block{}, fmt.Errorf("block: %w", err)
	}
	var b Block
	kept := fields[:0:0]
	hasChildrenKey := false
	for _, f := range fields {
		if f.Key == "children" {
			hasChildrenKey = true
			if b.Children, err = DecodeBlocks(f.Value); err != nil {
				return Block{}, err
			}
			continue
		}
		kept = append(kept, f)
	}
	if hasChildrenKey {
		b.Raw = AppendObject(nil, kept)
	} else {
		b.Raw = append(json.RawMessage(nil), bytes.TrimSpace(data)...)
	}
	head, err := blockHeader(b.Raw)
	if err != nil {
		return Block{}, err
	}
	b.ID, b.Type, b.HasChildren = head.ID, head.Type, head.HasChildren
	return b, nil
}

type blockHead struct {
	ID          string `json:"id"`
	Type        string `json:"type"`
	HasChildren bool   `json:"has_children"`
}

func blockHeader(raw []byte) (blockHead, error) {
	var h blockHead
	if err := json.Unmarshal(raw, &h); err != nil {
		return blockHead{}, fmt.Errorf("%w: block: %v", ErrInvalidObject, err)
	}
	return h, nil
}
