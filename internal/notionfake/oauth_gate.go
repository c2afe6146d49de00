package notionfake

import "sync"

// GateOptions configures a Gate.
type GateOptions struct {
	// Count is how many refresh requests the gate catches; later ones pass.
	// Zero catches every refresh request until Release or Abort.
	Count int
	// RotateBeforeBlock commits the grant (rotation, or its invalid_grant
	// verdict) before parking, modelling "Notion committed the rotation but the
	// client never read the response". By default requests park before the
	// grant is decided.
	RotateBeforeBlock bool
	// RotateBeforeBlockFunc, when set, decides per caught request (seq counts
	// the gate's catches from 1) and overrides RotateBeforeBlock.
	RotateBeforeBlockFunc func(seq int) bool
}

// Arrival reports a refresh request parked at a Gate.
type Arrival struct {
	// Seq is the request's position among the gate's catches, from 1.
	Seq int
	// WorkspaceID owns the presented refresh token; "" when it is unknown.
	WorkspaceID string
	// Rotated reports whether a rotation was committed before parking.
	Rotated bool
}

// Gate parks refresh requests at the token endpoint so a test can act while
// they are in flight (kill the client, race another refresh), then Release
// or Abort them. Its methods are safe for concurrent use.
type Gate struct {
	s       *Server
	opts    GateOptions
	arrived chan Arrival
	done    chan struct{}
	once    sync.Once
	aborted bool // written before done is closed
	caught  int  // guarded by s.mu
}

// BlockRefresh installs a Gate catching every later refresh request until it
// is released; the grant is decided after release.
func (s *Server) BlockRefresh() *Gate { return s.BlockRefreshWith(GateOptions{}) }

// BlockRefreshWith installs a Gate configured by o. Gates catch requests in
// the order they were installed. Refresh requests are caught after client
// authentication and body validation, where the fake decides the grant;
// requests answered by FailNext or RateLimitNext never reach a gate.
func (s *Server) BlockRefreshWith(o GateOptions) *Gate {
	g := &Gate{
		s:       s,
		opts:    o,
		arrived: make(chan Arrival, max(o.Count, 64)),
		done:    make(chan struct{}),
	}
	s.mu.Lock()
	s.gates = append(s.gates, g)
	s.mu.Unlock()
	return g
}

// Arrived delivers one Arrival per parked request, once it is parked.
func (g *Gate) Arrived() <-chan Arrival { return g.arrived }

// Release uninstalls the gate and lets its parked requests continue: those
// not yet decided are decided now (whether or not their client is still
// there) and all are answered.
func (g *Gate) Release() { g.uninstall(); g.finish(false) }

// Abort uninstalls the gate and ends its parked requests without a response:
// their connections are closed. A rotation committed before parking
// (RotateBeforeBlock) stands; the others are never decided, modelling a
// request lost before Notion processed it.
func (g *Gate) Abort() { g.uninstall(); g.finish(true) }

func (g *Gate) uninstall() {
	s := g.s
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, x := range s.gates {
		if x == g {
			s.gates = append(s.gates[:i:i], s.gates[i+1:]...)
			return
		}
	}
}

func (g *Gate) finish(abort bool) {
	g.once.Do(func() {
		g.aborted = abort
		close(g.done)
	})
}

// catchGateLocked returns the first installed gate with capacity and the
// request's sequence number at it, or nil. The caller holds s.mu.
func (s *Server) catchGateLocked() (*Gate, int) {
	for _, g := range s.gates {
		if g.opts.Count == 0 || g.caught < g.opts.Count {
			g.caught++
			return g, g.caught
		}
	}
	return nil, 0
}

func (g *Gate) rotateFirst(seq int) bool {
	if g.opts.RotateBeforeBlockFunc != nil {
		return g.opts.RotateBeforeBlockFunc(seq)
	}
	return g.opts.RotateBeforeBlock
}

// park announces a and blocks until the gate is released or aborted or the
// server closed. It reports whether the request is to be aborted.
func (g *Gate) park(a Arrival, closed <-chan struct{}) (aborted bool) {
	select {
	case g.arrived <- a:
	default:
		select {
		case g.arrived <- a:
		case <-g.done:
		case <-closed:
			return true
		}
	}
	select {
	case <-g.done:
		return g.aborted
	case <-closed:
		return true
	}
}
