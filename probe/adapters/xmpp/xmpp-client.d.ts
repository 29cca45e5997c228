/** xmpp.js ships no type declarations; ./client.ts gives its real, narrow types. */
declare module '@xmpp/client' {
  export function client(options: Record<string, unknown>): unknown;
  export function xml(name: string, attrs?: Record<string, unknown>, ...children: unknown[]): unknown;
}
