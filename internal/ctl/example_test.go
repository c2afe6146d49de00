package ctl_test

import (
	"context"
	"fmt"
	"os"

	"github.com/notionsync/notionsync/internal/ctl"
)

// Run takes the command line without the program name and returns the exit
// status; cmd/notionsyncctl passes ctl.OSEnv(). connect-url without -id
// needs neither the admin token nor a request.
func ExampleRun() {
	code := ctl.Run(context.Background(), []string{"connect-url", "-base", "https://sync.example.com"},
		ctl.Env{Stdout: os.Stdout})
	fmt.Println("exit status", code)
	// Output:
	// https://sync.example.com/oauth/start
	// exit status 0
}
