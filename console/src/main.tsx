import { render } from "preact";
import { App } from "./app";
import { loadConfig, session } from "./auth";
import "./styles.css";

// A session restored from this tab (a reload) needs the configuration to refresh its token.
if (session.value) void loadConfig();
render(<App />, document.getElementById("app")!);
