// Starts GraphiQL on this server's GraphQL endpoint: queries and mutations
// over fetch, subscriptions over its websocket (graphql-transport-ws).
(function () {
  'use strict';
  var root = document.getElementById('graphiql');
  var path = root.getAttribute('data-endpoint') || '/graphql';
  var ws = location.protocol === 'https:' ? 'wss:' : 'ws:';
  var fetcher = GraphiQL.createFetcher({
    url: location.origin + path,
    subscriptionUrl: ws + '//' + location.host + path,
  });
  var defaultQuery = [
    '# Welcome to Hindsight. Put the cursor in an',
    '# operation and press Ctrl-Enter to run it.',
    '',
    '# Writes an event to the stream cart-1.',
    'mutation Append {',
    '  appendToStream(',
    '    streamId: "cart-1"',
    '    events: [{type: "ItemAdded", data: {items: {apple: 2}}}]',
    '  ) {',
    '    nextExpectedVersion',
    '    lastPosition',
    '  }',
    '}',
    '',
    '# The stream now, and as it was at version 1.',
    'query Read {',
    '  stream(id: "cart-1") {',
    '    version',
    '    state',
    '    first: state(at: {version: 1})',
    '  }',
    '}',
    '',
    '# Replays the log, then stays open:',
    '# run Append again and watch.',
    'subscription Live {',
    '  events(afterPosition: "0") {',
    '    position',
    '    streamId',
    '    type',
    '    data',
    '  }',
    '}',
    '',
  ].join('\n');
  ReactDOM.createRoot(root).render(
    React.createElement(GraphiQL, {
      fetcher: fetcher,
      defaultQuery: defaultQuery,
      isHeadersEditorEnabled: true,
      shouldPersistHeaders: false,
    }),
  );
})();
