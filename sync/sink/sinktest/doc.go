// Package sinktest is the conformance suite every sink.Sink implementation
// must pass: round trip, monotonic versions, equal-minute ties, tombstones,
// unshared marks, id validation, concurrent writers of one object, and Close.
// Backends call Run from their own tests with a Factory returning an empty
// store; it also provides realistic fixtures (NewPage, NewDatabase) and JSON
// comparison helpers.
//
// It is test support: import it only from _test.go files. Run starts
// parallel subtests; the Factory must be safe to call from them.
package sinktest
