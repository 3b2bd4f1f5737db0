package org.ddim4j.serve;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.File;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;

import org.ddim4j.Ddim;
import org.ddim4j.FashionClassifier;
import org.ddim4j.ImageBatch;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.openqa.selenium.By;
import org.openqa.selenium.JavascriptExecutor;
import org.openqa.selenium.OutputType;
import org.openqa.selenium.WebElement;
import org.openqa.selenium.chrome.ChromeDriver;
import org.openqa.selenium.chrome.ChromeDriverService;
import org.openqa.selenium.chrome.ChromeOptions;
import org.openqa.selenium.support.ui.Select;
import org.openqa.selenium.support.ui.WebDriverWait;

/**
 * The page in a real browser: Debian's chromium, headless, driven by Selenium through Debian's
 * chromium-driver, against `ddim serve` on the shipped model. Leaves a screenshot in
 * target/screenshots/serve-page.png. scripts/test.sh installs the browser, so CI always runs it.
 */
class BrowserTest {
    private static final Path CHROMIUM = Path.of("/usr/bin/chromium");
    private static final Path CHROMEDRIVER = Path.of("/usr/bin/chromedriver");
    private static final Path MODEL = Path.of(System.getProperty("ddim4j.repo"), "models", "fashion-mnist-32.safetensors");

    @TempDir
    Path profile;

    /** Headless chromium through chromium-driver; skipped where they are not installed, except under CI. */
    private ChromeDriver browser() {
        boolean installed = Files.isExecutable(CHROMIUM) && Files.isExecutable(CHROMEDRIVER);
        if (System.getenv("CI") == null) {
            Assumptions.assumeTrue(installed, "chromium and chromium-driver are not installed (apt-get install chromium chromium-driver)");
        }
        assertTrue(installed, "CI needs chromium and chromium-driver (scripts/test.sh installs them)");
        ChromeOptions options = new ChromeOptions().setBinary(CHROMIUM.toFile()).addArguments("--headless=new", "--no-sandbox",
                "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--no-first-run", "--window-size=1200,1000", "--user-data-dir=" + profile);
        ChromeDriverService service = new ChromeDriverService.Builder().usingDriverExecutable(CHROMEDRIVER.toFile()).build();
        return new ChromeDriver(service, options);
    }

    @Test
    void thePageSamplesFourImagesLiveAndInterpolates() throws Exception {
        try (Ddim ddim = Ddim.open(MODEL); SampleServer server = SampleServer.start(ddim, ServeSettings.defaults(), "127.0.0.1", 0)) {
            ChromeDriver browser = browser();
            try {
                WebDriverWait wait = new WebDriverWait(browser, Duration.ofSeconds(120));
                browser.get(server.uri().toString());
                wait.until(b -> b.findElement(By.id("model-info")).getText().contains("parameters"));
                assertFalse(browser.findElement(By.id("class-fields")).isDisplayed(), "an unconditional model has no class picker");
                assertFalse(browser.findElement(By.id("token-panel")).isDisplayed(), "no token asked for");
                setField(browser, "count", "4");
                setField(browser, "steps", "6");
                // Count how often each grid image changes: previews first, then the final image.
                browser.executeScript("window.srcChanges = 0; new MutationObserver(m => { window.srcChanges += m.length; })"
                        + ".observe(document.getElementById('grid'), {subtree: true, attributes: true, attributeFilter: ['src']});");
                browser.findElement(By.id("generate")).click();
                wait.until(b -> "true".equals(b.findElement(By.id("grid")).getAttribute("data-done")));

                List<WebElement> images = browser.findElements(By.cssSelector("#grid img"));
                assertEquals(4, images.size());
                for (WebElement image : images) {
                    assertEquals(32L, ((Number) browser.executeScript("return arguments[0].naturalWidth", image)).longValue());
                }
                long changes = ((Number) browser.executeScript("return window.srcChanges")).longValue();
                assertTrue(changes > 4, "the grid showed previews before the final images: " + changes + " image updates");
                assertTrue(browser.findElement(By.id("status")).getText().contains("4 image(s)"),
                        browser.findElement(By.id("status")).getText());

                images.get(2).click();
                assertTrue(browser.findElement(By.id("details")).isDisplayed());
                assertEquals("seed 42, index 2", browser.findElement(By.id("details-text")).getText());
                WebElement download = browser.findElement(By.id("download"));
                assertTrue(download.getAttribute("href").startsWith("data:image/png;base64,"));
                assertEquals("ddim-seed42-index2.png", download.getAttribute("download"));

                setField(browser, "frames", "5");
                setField(browser, "interpolate-steps", "6");
                browser.findElement(By.id("interpolate")).click();
                wait.until(b -> b.findElements(By.cssSelector("#strip img")).size() == 5);
                wait.until(b -> ((Number) ((JavascriptExecutor) b).executeScript(
                        "return [...document.querySelectorAll('#strip img')].filter(i => i.naturalWidth === 32).length")).intValue() == 5);

                Path screenshot = Path.of("target", "screenshots", "serve-page.png");
                Files.createDirectories(screenshot.getParent());
                File taken = browser.getScreenshotAs(OutputType.FILE);
                Files.copy(taken.toPath(), screenshot, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
                assertTrue(Files.size(screenshot) > 10_000, "a screenshot of the page");
            } finally {
                browser.quit();
            }
        }
    }

    /**
     * The class model behind a token: the page asks for the token once, then shows a class picker; the sneakers it
     * draws with guidance 3 are sneakers to the project's Fashion-MNIST classifier.
     */
    @Test
    void thePageAsksForTheTokenAndDrawsTheClassPicked() throws Exception {
        String token = "browser-test-token-0123456789";
        try (Ddim ddim = Ddim.open(MODEL.resolveSibling("fashion-mnist-32-classes.safetensors"));
                SampleServer server = SampleServer.start(ddim, ServeSettings.defaults(), ServeAccess.withToken(token), "127.0.0.1", 0);
                FashionClassifier classifier = new FashionClassifier()) {
            ChromeDriver browser = browser();
            try {
                WebDriverWait wait = new WebDriverWait(browser, Duration.ofSeconds(120));
                browser.get(server.uri().toString());
                wait.until(b -> b.findElement(By.id("token-panel")).isDisplayed());
                setField(browser, "token", "a-wrong-token-of-some-length");
                browser.findElement(By.id("token-submit")).click();
                wait.until(b -> b.findElement(By.id("token-status")).getText().contains("refused"));
                setField(browser, "token", token);
                browser.findElement(By.id("token-submit")).click();
                wait.until(b -> b.findElement(By.id("model-info")).getText().contains("parameters"));
                assertFalse(browser.findElement(By.id("token-panel")).isDisplayed());
                assertTrue(browser.findElement(By.id("class-fields")).isDisplayed(), "a class model has a class picker");

                new Select(browser.findElement(By.id("class"))).selectByVisibleText("7: Sneaker");
                setField(browser, "guidance", "3");
                setField(browser, "count", "8");
                setField(browser, "steps", "20");
                browser.findElement(By.id("generate")).click();
                wait.until(b -> "true".equals(b.findElement(By.id("grid")).getAttribute("data-done")));

                List<WebElement> cells = browser.findElements(By.cssSelector("#grid img"));
                assertEquals(8, cells.size());
                float[] pixels = new float[8 * 32 * 32];
                for (int i = 0; i < cells.size(); i++) {
                    String src = cells.get(i).getAttribute("src");
                    int[] gray = ServeClient.pixels(src.substring(src.indexOf(',') + 1));
                    assertEquals(32 * 32, gray.length);
                    for (int p = 0; p < gray.length; p++) {
                        pixels[i * 1024 + p] = gray[p] / 255f;
                    }
                }
                int[] seen = classifier.classify(new ImageBatch(8, 1, 32, 32, pixels));
                long sneakers = java.util.Arrays.stream(seen).filter(c -> c == 7).count();
                assertTrue(sneakers >= 6, "the classifier sees " + sneakers + " of 8 sneakers: " + java.util.Arrays.toString(seen));
                cells.get(0).click();
                assertTrue(browser.findElement(By.id("details-text")).getText().contains("class Sneaker"),
                        browser.findElement(By.id("details-text")).getText());
            } finally {
                browser.quit();
            }
        }
    }

    private static void setField(ChromeDriver browser, String id, String value) {
        WebElement field = browser.findElement(By.id(id));
        field.clear();
        field.sendKeys(value);
    }
}
