package playbook

import (
	"container/heap"
	"fmt"
	"strings"
)

// graph computes Order and Levels with Kahn's algorithm and reports dependency cycles with their path.
// Ready steps wait in a min-heap keyed by file position, so that among steps whose needs are met the
// one written first goes first: O((V+E) log V), which is linear for all practical purposes
// (BenchmarkLongChain measures it). Unknown needs and self-dependencies were reported and left out of
// Step.Needs, so every edge here is between existing, distinct steps.
func (b *builder) graph() {
	pb := b.pb
	n := len(pb.Steps)
	indeg := make([]int, n)
	dependents := make([][]int, n)
	for i, s := range pb.Steps {
		if j, ok := b.index[s.ID]; !ok || j != i {
			continue // a duplicate id: reported; it takes no part in the graph
		}
		for _, need := range s.Needs {
			j := b.index[need]
			indeg[i]++
			dependents[j] = append(dependents[j], i)
		}
	}
	level := make([]int, n)
	ready := &intHeap{}
	for i := range n {
		if j, ok := b.index[pb.Steps[i].ID]; ok && j == i && indeg[i] == 0 {
			ready.items = append(ready.items, i)
		}
	}
	heap.Init(ready)
	order := make([]*Step, 0, n)
	maxLevel := -1
	for ready.Len() > 0 {
		i := heap.Pop(ready).(int)
		order = append(order, pb.Steps[i])
		maxLevel = max(maxLevel, level[i])
		for _, k := range dependents[i] {
			level[k] = max(level[k], level[i]+1)
			if indeg[k]--; indeg[k] == 0 {
				heap.Push(ready, k)
			}
		}
	}
	pb.Order = order
	pb.Levels = make([][]*Step, maxLevel+1)
	for _, s := range order {
		i := b.index[s.ID]
		pb.Levels[level[i]] = append(pb.Levels[level[i]], s)
	}
	if len(order) < len(b.index) {
		b.cycles(indeg)
	}
}

// cycles reports the dependency cycles among the steps Kahn's algorithm could not order. Each of them
// has a need that was never ordered either, so following such needs from any of them must come back to
// a step already seen: that closes a cycle. Steps seen in one walk are not walked again, so the work is
// linear and each cycle is reported once.
func (b *builder) cycles(indeg []int) {
	pb := b.pb
	done := make([]bool, len(pb.Steps))
	onPath := make(map[int]int)
	for start := range pb.Steps {
		if indeg[start] == 0 || done[start] {
			continue
		}
		var path []int
		clear(onPath)
		i := start
		for !done[i] {
			if at, seen := onPath[i]; seen {
				b.reportCycle(path[at:])
				break
			}
			onPath[i] = len(path)
			path = append(path, i)
			next := -1
			for _, need := range pb.Steps[i].Needs {
				if j := b.index[need]; indeg[j] > 0 {
					next = j
					break
				}
			}
			if next < 0 {
				break // cannot happen: an unordered step has an unordered need
			}
			i = next
		}
		for _, k := range path {
			done[k] = true
		}
	}
}

// reportCycle reports a cycle, rotated to start at the step written first, at that step's need that
// leads into the cycle: "dependency cycle: alpha -> gamma -> beta -> alpha".
func (b *builder) reportCycle(cycle []int) {
	first := 0
	for k, i := range cycle {
		if i < cycle[first] {
			first = k
		}
	}
	cycle = append(cycle[first:len(cycle):len(cycle)], cycle[:first]...)
	names := make([]string, 0, len(cycle)+1)
	for _, i := range cycle {
		names = append(names, b.pb.Steps[i].ID)
	}
	names = append(names, names[0])
	if len(names) > 21 {
		names = append(append(names[:10:10], fmt.Sprintf("... (%d more)", len(names)-20)), names[len(names)-10:]...)
	}
	s := b.pb.Steps[cycle[0]]
	next := b.pb.Steps[cycle[1%len(cycle)]].ID
	at := b.needNodes[cycle[0]][0]
	for k, need := range s.Needs {
		if need == next {
			at = b.needNodes[cycle[0]][k]
		}
	}
	b.errorf(at, "dependency cycle: %s (each step needs the next); remove one of these needs", strings.Join(names, " -> "))
}

// intHeap is a min-heap of step indexes.
type intHeap struct{ items []int }

func (h *intHeap) Len() int           { return len(h.items) }
func (h *intHeap) Less(i, j int) bool { return h.items[i] < h.items[j] }
func (h *intHeap) Swap(i, j int)      { h.items[i], h.items[j] = h.items[j], h.items[i] }
func (h *intHeap) Push(x any)         { h.items = append(h.items, x.(int)) }
func (h *intHeap) Pop() any {
	x := h.items[len(h.items)-1]
	h.items = h.items[:len(h.items)-1]
	return x
}
