package schedule

import "context"

// Pace is pace, for the tests of Run's pacing.
type Pace = pace

// TickPaced runs one tick as Run's loop does, remembering in p what the
// next ticks may leave out.
func (s *Scheduler) TickPaced(ctx context.Context, p *Pace) (TickStats, error) {
	return s.tick(ctx, nil, p)
}
