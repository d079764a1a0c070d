package projections

import (
	"context"
	"errors"
	"time"

	"github.com/hindsight-dev/hindsight/eventstore"
)

// runProjector builds the read model from the log and then keeps it current.
//
// It subscribes to the whole log, not only to "order-" streams: a filtered
// subscription would not say how far it has looked past events of other
// streams, and the checkpoint must advance past every position for "wait
// until the checkpoint reaches P" to be exact (guarantee 8). Events of other
// streams cost one copy from memory each.
func (s *Service) runProjector(ctx context.Context) {
	if err := s.store.WaitReady(ctx); err != nil {
		if ctx.Err() == nil {
			s.log.Error("order read model cannot start: the event store did not become ready", "err", err)
		}
		return
	}
	b := &rebuild{start: time.Now(), target: s.store.HeadPosition(), lastLog: time.Now()}
	s.log.Info("building order read model from the log", "positions", b.target,
		"schemaVersion", s.orders.proj.SchemaVersion())
	if b.target == 0 {
		s.markReady(b)
	}
	for ctx.Err() == nil {
		after := s.rm.checkpoint.Load()
		sub, err := s.store.Subscribe(ctx, eventstore.SubscribeOptions{AfterPosition: &after})
		if err == nil {
			err = s.follow(ctx, sub, b)
			sub.Close()
		}
		if ctx.Err() != nil || errors.Is(err, eventstore.ErrClosed) {
			return
		}
		s.log.Warn("order read model projector stopped; resuming from its checkpoint",
			"checkpoint", s.rm.checkpoint.Load(), "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

// rebuild tracks the first pass over the log, for progress logs and Ready.
type rebuild struct {
	start   time.Time
	target  int64 // head when the projector started
	lastLog time.Time
}

func (s *Service) follow(ctx context.Context, sub *eventstore.Subscription, b *rebuild) error {
	every := s.orders.every
	for {
		ev, err := sub.Recv(ctx)
		if err != nil {
			return err
		}
		o, isOrder := s.rm.apply(ev, s.orders.proj)
		// The projector folds every order event anyway, so it also takes the
		// order snapshots: that covers orders written by other instances or
		// through appendToStream, and rebuilds after a schema change.
		if isOrder && ev.Version%every == 0 {
			s.orders.offerSnapshot(ctx, ev, o)
		}
		if s.ready.Load() {
			continue
		}
		if ev.Position >= b.target {
			s.markReady(b)
		} else if time.Since(b.lastLog) >= time.Second {
			b.lastLog = time.Now()
			s.log.Info("building order read model", "position", ev.Position, "of", b.target,
				"percent", ev.Position*100/b.target,
				"events_per_sec", int(float64(ev.Position)/time.Since(b.start).Seconds()))
		}
	}
}

func (s *Service) markReady(b *rebuild) {
	orders, states := s.rm.size()
	s.ready.Store(true)
	s.log.Info("order read model ready", "position", s.rm.checkpoint.Load(), "orders", orders,
		"states", states, "took", time.Since(b.start).Round(time.Millisecond))
}

// runCheckpointSaver stores the checkpoint every second while it moves, and
// once more when the service closes.
func (s *Service) runCheckpointSaver(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	saved := int64(-1)
	save := func(ctx context.Context) {
		p := s.rm.checkpoint.Load()
		if p == saved {
			return
		}
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		err := s.opts.Checkpoints.SaveCheckpoint(ctx, Checkpoint{Projector: ReadModelProjector,
			SchemaVersion: s.orders.proj.SchemaVersion(), Position: p, Instance: s.store.Instance(),
			UpdatedAt: time.Now().UTC()})
		if err != nil {
			s.log.Warn("cannot save the order read model checkpoint", "position", p, "err", err)
			return
		}
		saved = p
	}
	for {
		select {
		case <-ctx.Done():
			save(context.Background())
			return
		case <-t.C:
			save(ctx)
		}
	}
}
