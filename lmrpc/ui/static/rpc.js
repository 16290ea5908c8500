// JSON-RPC 2.0 over POST /rpc with the session's bearer token: the same API every client uses.

export class RpcError extends Error {
  constructor(method, error) {
    super(error.message);
    this.method = method;
    this.code = error.code;
    this.data = error.data || {};
  }
}

export const FORBIDDEN = -32003;
export const METHOD_NOT_FOUND = -32601;
export const UNAUTHENTICATED = -32001;

let nextId = 1;

export async function call(token, method, params = {}) {
  const response = await fetch("../rpc", {
    method: "POST",
    headers: { "Content-Type": "application/json", Authorization: `Bearer ${token}` },
    body: JSON.stringify({ jsonrpc: "2.0", method, params, id: nextId++ }),
  });
  const answer = await response.json();
  if (answer.error) throw new RpcError(method, answer.error);
  return answer.result;
}
