// An upstream for Aero2's path tests: an embedded Tomcat with an admin
// servlet on /admin/* and a default servlet on /, on one connector, the
// way a Java wiki sits behind the routes of examples/routing. Each servlet
// answers with its name (also in X-Servlet), the path Tomcat resolved and
// the identity header Aero2 sent.
//
// Usage: java -cp tomcat-embed-core.jar:. PathServlets <base dir>
// It prints "LISTENING <port>" once Tomcat serves on 127.0.0.1, and when
// its standard input closes (the Go test process went away) it stops,
// removes the base directory and exits.

import jakarta.servlet.http.HttpServlet;
import jakarta.servlet.http.HttpServletRequest;
import jakarta.servlet.http.HttpServletResponse;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.stream.Stream;
import org.apache.catalina.Lifecycle;
import org.apache.catalina.connector.Connector;
import org.apache.catalina.core.StandardContext;
import org.apache.catalina.startup.Tomcat;

public class PathServlets {
    static final class Named extends HttpServlet {
        private final String name;

        Named(String name) {
            this.name = name;
        }

        @Override
        protected void service(HttpServletRequest req, HttpServletResponse resp) throws IOException {
            String info = req.getPathInfo();
            resp.setContentType("text/plain;charset=UTF-8");
            resp.setHeader("X-Servlet", name);
            resp.getWriter().print(name + " servlet; path " + req.getServletPath() + (info == null ? "" : info)
                    + "; uri " + req.getRequestURI() + "; user " + req.getHeader("X-Forwarded-User")
                    + "; groups " + req.getHeader("X-Forwarded-Groups") + "\n");
        }
    }

    public static void main(String[] args) throws Exception {
        Tomcat tomcat = new Tomcat();
        tomcat.setBaseDir(args[0]);
        Connector connector = tomcat.getConnector();
        connector.setPort(0);
        connector.setProperty("address", "127.0.0.1");
        // Tomcat.addContext would scan for annotations, and Debian's
        // Tomcat jar comes without the jakarta.annotation API that the
        // scanner loads: configure the context by hand instead.
        StandardContext ctx = new StandardContext();
        ctx.setName("");
        ctx.setPath("");
        ctx.setDocBase(args[0]);
        ctx.addLifecycleListener(event -> {
            if (Lifecycle.CONFIGURE_START_EVENT.equals(event.getType())) {
                ctx.setConfigured(true);
            }
        });
        tomcat.getHost().addChild(ctx);
        Tomcat.addServlet(ctx, "admin", new Named("admin"));
        ctx.addServletMappingDecoded("/admin/*", "admin");
        Tomcat.addServlet(ctx, "default", new Named("default"));
        ctx.addServletMappingDecoded("/", "default");
        tomcat.start();
        System.out.println("LISTENING " + connector.getLocalPort());
        System.out.flush();
        while (System.in.read() != -1) {
            // Wait for the test process to close our standard input.
        }
        tomcat.stop();
        try (Stream<Path> files = Files.walk(Path.of(args[0]))) {
            files.sorted(Comparator.reverseOrder()).forEach(f -> f.toFile().delete());
        }
        System.exit(0);
    }
}
