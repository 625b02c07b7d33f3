/*
 * Confab's GraphiQL page (served by schema/graphiql_page.py, with its globals:
 * React, ReactDOM, GraphiQL 3 and graphqlWs, all loaded from Confab itself).
 *
 * - The fetcher sends the headers typed in GraphiQL's Headers tab with every query
 *   and mutation (fetch), and for a subscription opens a graphql-ws connection
 *   whose connection_init payload carries the same key and app: {"appKey", "app"},
 *   which is what Confab reads (a browser cannot set headers on a WebSocket).
 * - The Examples panel lists graphql/operations/, delivered inside the page as JSON:
 *   one click opens an operation in a new tab, keeping the current tab's headers.
 */
(function () {
  "use strict";

  const config = JSON.parse(document.getElementById("confab-graphiql-config").textContent);
  const h = React.createElement;

  const httpUrl = new URL(config.endpoint, window.location.href);
  httpUrl.search = "";
  httpUrl.hash = "";
  const socketUrl = new URL(httpUrl.href);
  socketUrl.protocol = httpUrl.protocol === "https:" ? "wss:" : "ws:";

  // The same rules as runtime/credentials.py: AOMI-APP-KEY, then X-API-Key, then
  // Authorization: Bearer; X-Confab-App chooses among the key's apps.
  function lowered(headers) {
    const result = {};
    for (const [name, value] of Object.entries(headers || {})) {
      if (value !== null && value !== undefined) {
        result[name.toLowerCase()] = String(value).trim();
      }
    }
    return result;
  }

  function connectionParams(headers) {
    const named = lowered(headers);
    const params = {};
    let key = named["aomi-app-key"] || named["x-api-key"];
    if (!key && named.authorization) {
      const [scheme, ...rest] = named.authorization.split(/\s+/);
      const token = rest.join(" ").trim();
      if (scheme.toLowerCase() === "bearer" && token) {
        key = token;
      }
    }
    if (key) {
      params.appKey = key;
    }
    if (named["x-confab-app"]) {
      params.app = named["x-confab-app"];
    }
    return params;
  }

  function operationType(params, opts) {
    const ast = opts && opts.documentAST;
    const operations = ((ast && ast.definitions) || []).filter(
      (node) => node.kind === "OperationDefinition",
    );
    const chosen =
      operations.length === 1
        ? operations[0]
        : operations.find((node) => node.name && node.name.value === params.operationName);
    if (chosen) {
      return chosen.operation;
    }
    // No parsed document (introspection): look at the first keyword.
    const text = (params.query || "").replace(/#[^\n\r]*/g, "");
    const match = /^\s*(query|mutation|subscription)\b/.exec(text);
    return match ? match[1] : "query";
  }

  async function overHttp(params, headers) {
    const response = await fetch(httpUrl.href, {
      method: "POST",
      headers: {
        ...headers,
        "Content-Type": "application/json",
        Accept: "application/graphql-response+json, application/json",
      },
      body: JSON.stringify(params),
      credentials: "same-origin",
    });
    const text = await response.text();
    try {
      return JSON.parse(text);
    } catch {
      return { errors: [{ message: `HTTP ${response.status}: ${text}` }] };
    }
  }

  function describe(error) {
    if (Array.isArray(error) || error instanceof Error) {
      return error; // GraphQL errors, or a client error
    }
    if (error && typeof error.code === "number") {
      const reason = error.reason ? `: ${error.reason}` : "";
      const hint = error.code === 4403 ? " (the app key was refused: see the Headers tab)" : "";
      return { message: `the WebSocket closed with ${error.code}${reason}${hint}` };
    }
    return { message: String(error) };
  }

  // One graphql-ws connection per subscription: its connection_init payload is
  // the key typed for this run, and it closes when the subscription ends.
  function overWebSocket(params, headers) {
    return {
      subscribe(observer) {
        let done = false;
        const client = graphqlWs.createClient({
          url: socketUrl.href,
          connectionParams: connectionParams(headers),
          lazy: true,
          retryAttempts: 0,
        });
        const finish = () => {
          if (!done) {
            done = true;
            client.dispose();
          }
        };
        const stop = client.subscribe(
          { query: params.query, variables: params.variables, operationName: params.operationName },
          {
            next: (value) => observer.next(value),
            error: (error) => {
              finish();
              observer.error(describe(error));
            },
            complete: () => {
              finish();
              observer.complete();
            },
          },
        );
        return {
          unsubscribe() {
            stop();
            finish();
          },
        };
      },
    };
  }

  function fetcher(params, opts) {
    const headers = (opts && opts.headers) || {};
    return operationType(params, opts) === "subscription"
      ? overWebSocket(params, headers)
      : overHttp(params, headers);
  }

  // -- the Examples panel ---------------------------------------------------------

  function ExamplesIcon() {
    return h(
      "svg",
      { viewBox: "0 0 24 24", fill: "none", stroke: "currentColor", strokeWidth: 1.5 },
      h("path", { d: "M8 6h12M8 12h12M8 18h12M4 6h.01M4 12h.01M4 18h.01", strokeLinecap: "round" }),
    );
  }

  function ExamplesPanel() {
    const editor = GraphiQL.React.useEditorContext({ nonNull: true });
    const pending = React.useRef(null);

    // addTab() fills the new tab with the default query; once it is the active
    // tab, put the example (and the headers of the tab it was opened from) in it.
    React.useEffect(() => {
      const wanted = pending.current;
      if (wanted && editor.tabs.length > wanted.tabCount && editor.queryEditor) {
        pending.current = null;
        editor.queryEditor.setValue(wanted.query);
        if (editor.variableEditor) {
          editor.variableEditor.setValue(wanted.variables);
        }
        if (editor.headerEditor) {
          editor.headerEditor.setValue(wanted.headers);
        }
      }
    });

    function open(query, variables) {
      pending.current = {
        tabCount: editor.tabs.length,
        query,
        variables: variables || "",
        headers: editor.headerEditor ? editor.headerEditor.getValue() : "",
      };
      editor.addTab();
    }

    if (config.examples.length === 0) {
      return h("div", { className: "confab-examples" }, h("p", null, "No example operations."));
    }
    return h(
      "div",
      { className: "confab-examples" },
      h("div", { className: "graphiql-doc-explorer-title" }, "Examples"),
      h("p", null, "graphql/operations/: click to open in a new tab."),
      config.examples.map((file) =>
        h(
          "section",
          { key: file.file },
          h("h3", null, file.file),
          h(
            "ul",
            null,
            file.operations.map((operation) =>
              h(
                "li",
                { key: operation.name },
                h(
                  "button",
                  {
                    type: "button",
                    "data-operation": operation.name,
                    onClick: () => open(operation.document, operation.variables),
                  },
                  h("span", { className: "confab-operation-type" }, operation.type),
                  operation.name,
                ),
              ),
            ),
            h(
              "li",
              { key: "" },
              h(
                "button",
                {
                  type: "button",
                  className: "confab-whole-file",
                  "data-file": file.file,
                  onClick: () => open(file.document, ""),
                },
                "the whole file",
              ),
            ),
          ),
        ),
      ),
    );
  }

  const examplesPlugin = { title: "Examples", icon: ExamplesIcon, content: ExamplesPanel };

  // Open the panel on a first visit; afterwards GraphiQL remembers the choice.
  let firstVisit = true;
  try {
    firstVisit = window.localStorage.getItem("graphiql:visiblePlugin") === null;
  } catch {
    // storage disabled: GraphiQL falls back to memory
  }

  ReactDOM.createRoot(document.getElementById("graphiql")).render(
    h(GraphiQL, {
      fetcher,
      plugins: [examplesPlugin],
      visiblePlugin: firstVisit ? examplesPlugin : undefined,
      defaultQuery: config.welcome,
      defaultEditorToolsVisibility: true,
      isHeadersEditorEnabled: true,
      // Keys are secrets: GraphiQL keeps headers only in memory unless the user
      // turns on "Persist headers" in its settings.
      shouldPersistHeaders: false,
      inputValueDeprecation: true,
    }),
  );
})();
