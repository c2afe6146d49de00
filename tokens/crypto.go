package tokens

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// Key is one AES-256 key of a Keyring.
type Key struct {
	// ID names the key; it is stored next to every ciphertext so that old
	// ciphertexts stay readable after the primary key changes. 1 to 32
	// characters of [A-Za-z0-9_-].
	ID string
	// Secret is the 32-byte key.
	Secret []byte
}

// Keyring encrypts token secrets at rest with AES-256-GCM. The first key is
// the primary: every write uses it. The others only decrypt, so a key can be
// rotated by prepending a new one (refreshes re-encrypt records as they go,
// Store.Rekey does it at once) and removing the old key once no record uses
// it (Connection.KeyID tells).
//
// A Keyring is immutable and safe for concurrent use.
type Keyring struct {
	primary string
	aeads   map[string]cipher.AEAD
}

// NewKeyring builds a keyring; keys[0] is the primary.
func NewKeyring(keys ...Key) (*Keyring, error) {
	if len(keys) == 0 {
		return nil, errors.New("tokens: keyring needs at least one key")
	}
	kr := &Keyring{primary: keys[0].ID, aeads: make(map[string]cipher.AEAD, len(keys))}
	for i, k := range keys {
		if !validKeyID(k.ID) {
			return nil, fmt.Errorf("tokens: key %d: id must be 1-32 characters of [A-Za-z0-9_-]", i)
		}
		if _, dup := kr.aeads[k.ID]; dup {
			return nil, fmt.Errorf("tokens: key id %q appears twice", k.ID)
		}
		if len(k.Secret) != 32 {
			return nil, fmt.Errorf("tokens: key %q: need 32 bytes (AES-256), got %d", k.ID, len(k.Secret))
		}
		block, err := aes.NewCipher(k.Secret)
		if err != nil {
			return nil, fmt.Errorf("tokens: key %q: %w", k.ID, err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("tokens: key %q: %w", k.ID, err)
		}
		kr.aeads[k.ID] = aead
	}
	return kr, nil
}

func validKeyID(id string) bool {
	if len(id) == 0 || len(id) > 32 {
		return false
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}

// PrimaryID is the id of the key new ciphertexts are written with.
func (kr *Keyring) PrimaryID() string { return kr.primary }

// seal encrypts plaintext under the primary key. aad binds the ciphertext to
// its place (connection id and field), so ciphertexts cannot be swapped
// between records. The result is "keyid:base64(nonce|ciphertext)". An empty
// plaintext seals to "".
func (kr *Keyring) seal(plaintext, aad string) (string, error) {
	if plaintext == "" {
		return "", nil
	}
	aead := kr.aeads[kr.primary]
	nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(plaintext)+aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return "", fmt.Errorf("tokens: nonce: %w", err)
	}
	out := aead.Seal(nonce, nonce, []byte(plaintext), []byte(aad))
	return kr.primary + ":" + base64.RawStdEncoding.EncodeToString(out), nil
}

// open reverses seal. Errors never include the ciphertext or plaintext.
func (kr *Keyring) open(sealed, aad string) (string, error) {
	if sealed == "" {
		return "", nil
	}
	id, b64, ok := strings.Cut(sealed, ":")
	if !ok {
		return "", &decryptError{"tokens: malformed ciphertext"}
	}
	aead, ok := kr.aeads[id]
	if !ok {
		return "", &decryptError{fmt.Sprintf("tokens: ciphertext uses key %q, which is not configured", id)}
	}
	raw, err := base64.RawStdEncoding.DecodeString(b64)
	if err != nil || len(raw) < aead.NonceSize() {
		return "", &decryptError{"tokens: malformed ciphertext"}
	}
	pt, err := aead.Open(nil, raw[:aead.NonceSize()], raw[aead.NonceSize():], []byte(aad))
	if err != nil {
		return "", &decryptError{fmt.Sprintf("tokens: cannot decrypt with key %q (wrong key or tampered record)", id)}
	}
	return string(pt), nil
}

// keyID returns the key id of a sealed value ("" for an empty one).
func keyID(sealed string) string {
	id, _, _ := strings.Cut(sealed, ":")
	return id
}

// decryptError is a record that cannot be decrypted: a configuration problem
// (missing key) or tampering, never a Redis outage.
type decryptError struct{ msg string }

func (e *decryptError) Error() string { return e.msg }
