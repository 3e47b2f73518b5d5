package freshdesk

import "testing"

func TestParseLinkNext(t *testing.T) {
	cases := []struct {
		h, want string
		ok      bool
	}{
		{`<https://a.freshdesk.com/api/v2/tickets?per_page=100&page=2>; rel="next"`, "https://a.freshdesk.com/api/v2/tickets?per_page=100&page=2", true},
		{`<https://x/1>; rel="prev", <https://x/3>; rel="next"`, "https://x/3", true},
		{`<https://x/a,b>; rel="prev", <https://x/c>; rel=next`, "https://x/c", true},
		{`<https://x/1>; title="a, rel=\"next\""; rel="prev"`, "", false},
		{`<https://x/2>;rel="first next"`, "https://x/2", true},
		{`<https://x/2>; REL="Next"`, "https://x/2", true},
		{`<https://x/2>; rel="prev"`, "", false},
		{``, "", false},
		{`garbage`, "", false},
		{`<unterminated; rel="next"`, "", false},
	}
	for _, tc := range cases {
		got, ok := parseLinkNext(tc.h)
		if got != tc.want || ok != tc.ok {
			t.Errorf("parseLinkNext(%q) = %q, %v; want %q, %v", tc.h, got, ok, tc.want, tc.ok)
		}
	}
}
