// Package ttlmap stands in for the module of that path, which the Go module
// proxy reachable here does not serve; Plakar's web UI uses only this API.
package ttlmap

import (
	"sync"
	"time"
)

type entry[V any] struct {
	value   V
	expires time.Time
}

// Map is a concurrency-safe map whose entries expire after a fixed TTL.
type Map[K comparable, V any] struct {
	mu  sync.Mutex
	ttl time.Duration
	m   map[K]entry[V]
}

// New returns an empty map whose entries live for ttl.
func New[K comparable, V any](ttl time.Duration) *Map[K, V] {
	return &Map[K, V]{ttl: ttl, m: make(map[K]entry[V])}
}

// Add stores value under key, replacing any previous entry.
func (t *Map[K, V]) Add(key K, value V) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.m[key] = entry[V]{value: value, expires: time.Now().Add(t.ttl)}
}

// Get returns the value under key unless it is missing or expired.
func (t *Map[K, V]) Get(key K) (V, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.m[key]
	if !ok || time.Now().After(e.expires) {
		delete(t.m, key)
		var zero V
		return zero, false
	}
	return e.value, true
}

// AutoExpire starts a goroutine that drops expired entries periodically.
func (t *Map[K, V]) AutoExpire() {
	go func() {
		for range time.Tick(t.ttl) {
			now := time.Now()
			t.mu.Lock()
			for k, e := range t.m {
				if now.After(e.expires) {
					delete(t.m, k)
				}
			}
			t.mu.Unlock()
		}
	}()
}
