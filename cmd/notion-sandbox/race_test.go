//go:build race

package main

// raceEnabled makes the test build the binary with -race too.
const raceEnabled = true
