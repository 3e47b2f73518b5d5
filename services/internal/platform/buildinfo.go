package platform

import (
	"runtime"
	"runtime/debug"
	"sync"
)

// version is set at link time: -ldflags "-X github.com/autotriage/autotriage/services/internal/platform.version=v1.2.3".
var version = ""

// BuildInfo identifies the running binary.
type BuildInfo struct {
	Version   string `json:"version"`
	Revision  string `json:"revision"`
	Modified  bool   `json:"modified"`
	GoVersion string `json:"go_version"`
}

var buildOnce = sync.OnceValue(func() BuildInfo {
	bi := BuildInfo{Version: version, GoVersion: runtime.Version()}
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				bi.Revision = s.Value
			case "vcs.modified":
				bi.Modified = s.Value == "true"
			}
		}
		if bi.Version == "" && info.Main.Version != "" && info.Main.Version != "(devel)" {
			bi.Version = info.Main.Version
		}
	}
	if bi.Version == "" {
		bi.Version = "dev"
	}
	return bi
})

// Build returns the version and VCS information of the running binary.
func Build() BuildInfo { return buildOnce() }
