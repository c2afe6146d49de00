package control_test

import (
	"fmt"

	"github.com/notionsync/notionsync/internal/control"
)

// A receiver of needs_reauth notifications checks the signature over the raw
// body before trusting it.
func ExampleVerifySignature() {
	secret := "outbound-webhook-secret-0123456789"
	body := []byte(`{"event":"connection.needs_reauth","connection_id":"ws-1"}`)
	header := control.Sign(secret, body) // what notionsync sends in X-Notionsync-Signature

	fmt.Println(control.VerifySignature(secret, body, header))
	fmt.Println(control.VerifySignature(secret, []byte(`{"tampered":true}`), header))
	// Output:
	// true
	// false
}
