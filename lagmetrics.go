package main

import (
	"github.com/prometheus/client_golang/prometheus"
)

// lagCollector exports how far behind the head every live subscriber is, as
// a histogram made at scrape time (issue 16): a subscriber that does not keep
// up shows here long before the slow-consumer policy ends it at
// HINDSIGHT_SUBSCRIBER_MAX_LAG.
type lagCollector struct{ a *app }

var (
	descSubscriberLag = prometheus.NewDesc("hindsight_subscriber_lag_positions",
		"Positions each live subscription is behind the head, at scrape time (a distribution over subscriptions).", nil, nil)
	lagBuckets = []float64{0, 1, 10, 100, 1000, 10000, 100000}
)

func (lagCollector) Describe(ch chan<- *prometheus.Desc) { ch <- descSubscriberLag }

func (c lagCollector) Collect(ch chan<- prometheus.Metric) {
	comp := c.a.wired.Load()
	if comp == nil {
		return
	}
	ch <- lagHistogram(comp.endpoint.SubscriberLags)
}

// lagHistogram builds the histogram from each calling f with every lag.
func lagHistogram(each func(f func(lag int64))) prometheus.Metric {
	counts := make(map[float64]uint64, len(lagBuckets))
	var n uint64
	var sum float64
	each(func(lag int64) {
		n++
		sum += float64(lag)
		for _, b := range lagBuckets {
			if float64(lag) <= b {
				counts[b]++ // cumulative: every bucket at or above
			}
		}
	})
	return prometheus.MustNewConstHistogram(descSubscriberLag, n, sum, counts)
}
