/**
 * The `user:password` a server URL carries, decoded, for Basic authorization; undefined when it carries
 * neither (an empty user name with a password still counts, as curl sends it). Throws a URIError when
 * either is not valid percent-encoding (`%FF`), which the URL parser accepts: the manifest loader reports
 * that, so a running upstream never sees it.
 */
export function urlCredentials(url: URL): string | undefined {
  if (url.username === '' && url.password === '') return undefined;
  return `${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`;
}
