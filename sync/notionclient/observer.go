package notionclient

import "time"

// Observer receives metrics events. Implementations must be safe for
// concurrent use and must not block: they run on the request path. Embed
// NopObserver to implement only some methods.
//
// Connection ids are passed so that an implementation can choose its own
// labels; exporting them as metric labels is usually too many series.
type Observer interface {
	// OnRequest is called once per HTTP exchange with Notion (retries
	// included) with the response status (0: no response, a network
	// error) and how long the exchange took.
	OnRequest(connID, method string, status int, d time.Duration)
	// OnRateLimited is called when Notion answers 429/529 (reason
	// ReasonRetryAfter, retryAfter the backoff now in force for the
	// connection) and when a request is refused without being sent
	// (ReasonLocalBudget, ReasonBackoff).
	OnRateLimited(connID string, retryAfter time.Duration, reason string)
	// OnBackoffWait is called before each in-process wait: for rate budget
	// (ReasonLocalBudget), for a connection's backoff (ReasonBackoff), for a
	// Retry-After (ReasonRetryAfter) or before retrying a read
	// (ReasonServerError).
	OnBackoffWait(connID, reason string, d time.Duration)
}

// NopObserver ignores every event.
type NopObserver struct{}

// OnRequest implements Observer.
func (NopObserver) OnRequest(string, string, int, time.Duration) {}

// OnRateLimited implements Observer.
func (NopObserver) OnRateLimited(string, time.Duration, string) {}

// OnBackoffWait implements Observer.
func (NopObserver) OnBackoffWait(string, string, time.Duration) {}
