package auth

import (
	"sync"
	"time"
)

// RateLimiter is a token bucket per principal subject: each subject may make
// Burst operations at once and Rate per second on average. Buckets idle for
// a while are dropped, so memory stays bounded by the active subjects.
type RateLimiter struct {
	rate  float64
	burst float64
	now   func() time.Time

	mu      sync.Mutex
	buckets map[string]*bucket
	swept   time.Time
}

type bucket struct {
	tokens float64
	last   time.Time
}

// NewRateLimiter allows rate operations per second with bursts of burst per
// subject. burst < 1 means max(1, rate).
func NewRateLimiter(rate float64, burst int) *RateLimiter {
	b := float64(burst)
	if b < 1 {
		b = max(1, rate)
	}
	return &RateLimiter{rate: rate, burst: b, now: time.Now, buckets: map[string]*bucket{}}
}

// Allow takes a token from subject's bucket, reporting false (and how long
// until a token is available) when it is empty.
func (l *RateLimiter) Allow(subject string) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if now.Sub(l.swept) > time.Minute {
		l.sweep(now)
	}
	b := l.buckets[subject]
	if b == nil {
		b = &bucket{tokens: l.burst, last: now}
		l.buckets[subject] = b
	}
	b.tokens = min(l.burst, b.tokens+now.Sub(b.last).Seconds()*l.rate)
	b.last = now
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	return false, time.Duration((1 - b.tokens) / l.rate * float64(time.Second))
}

// sweep drops buckets that have refilled completely: they are the same as
// new ones.
func (l *RateLimiter) sweep(now time.Time) {
	l.swept = now
	for k, b := range l.buckets {
		if b.tokens+now.Sub(b.last).Seconds()*l.rate >= l.burst {
			delete(l.buckets, k)
		}
	}
}
