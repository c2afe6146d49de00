// Package browsertest runs a real headless Chromium for tests, driven by
// chromedp.
//
// New finds the browser (CHROMIUM_PATH, else chromium, chromium-browser,
// google-chrome or google-chrome-stable in PATH), starts it headless with a
// fresh profile in a temporary directory, and returns a chromedp context tied
// to the test: the test's cleanup cancels it, which ends the browser process
// and its children and removes the profile. Screenshot writes a PNG of the
// whole page for documentation or for a failing test's evidence.
//
// # Use
//
//	ctx := browsertest.New(t, browsertest.Options{})
//	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL)); err != nil {
//		t.Fatal(err)
//	}
//	text, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("h1")))
//
// # A missing browser
//
// Under CI (CI=true, as .ci/run sets it) a missing browser fails the test
// with a message naming `make deps`: a browser test that silently skips in
// CI proves nothing. Elsewhere the test is skipped with the same hint, so a
// developer without Chromium can still run the other tests.
//
// # Process lifetime
//
// chromedp starts the browser with the parent-death signal set, so it dies
// with the test binary even when that binary is killed; the cleanup also
// kills leftover child processes that still use the profile directory.
package browsertest
